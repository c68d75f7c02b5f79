"""The ports of the kpi service: what its use cases (services/kpi/service/) need of storage,
the catalogue, Kafka and the consumer group, as Protocols, and the typed records they exchange.

The Mongo and Kafka implementations are in services/kpi/adapters/, the in-memory ones (for the
unit tier) in services/kpi/adapters/memory.py; both pass the contract tests in
tests/support/contracts/kpi.py. Persistence shapes (`_id`s, outbox flags, raw documents) are
the adapters' business: nothing here names them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Protocol

from services.kpi.domain.divergence import DivergenceRecord
from services.kpi.domain.model import SelfAssessment, Status, SubjectKind
from services.kpi.domain.transition import Definition, SubjectState
from shared.consumer_types import TransientError
from shared.events.contracts import ItemOwnersChanged
from shared.events.validation import ItemFacts

# A status or divergence event as published on the status topic: CloudEvents JSON. Kept as
# published (its id and time included) so a status change published again is the same event.
PublishedEvent = dict[str, Any]


class VersionConflictError(TransientError):
    """Another writer stored a version this instance meant to write (a rebalance moved the
    subject's partition while a batch was in flight). The batch must be redone from the stored
    state: transient, so the consumer runner retries it rather than dead-lettering."""

    def __init__(self, versions: list[str]) -> None:
        super().__init__(f"versions already written by another writer: {versions[:5]}")
        self.versions = versions


# --- records ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StateVersion:
    """One stored version of a subject's state, with the status changes it produced (its
    outbox): stored together, in one write, or not at all."""

    state: SubjectState
    version: int
    outbox: tuple[PublishedEvent, ...]
    updated_at: datetime
    # When it was written and its subject's partition: what compaction selects on.
    written_at: datetime
    partition: int | None

    @property
    def subject_id(self) -> str:
        return self.state.subject_id


@dataclass(frozen=True, slots=True)
class StateSummary:
    """What the status gauge and compaction need of a cached state, without decoding it."""

    subject_id: str
    version: int
    status: str
    kind: str
    ministries: tuple[str, ...]

    @classmethod
    def of(cls, version: StateVersion) -> StateSummary:
        state = version.state
        return cls(
            subject_id=state.subject_id,
            version=version.version,
            status=state.evaluation.status.value,
            kind=state.kind.value,
            ministries=state.ministries,
        )


@dataclass(frozen=True, slots=True)
class CatalogueEntry:
    """A KPI or milestone of the catalogue: its definition, and what the shared event checks
    need of it (its facts and owners)."""

    definition: Definition
    facts: ItemFacts
    owners: frozenset[str]

    @property
    def id(self) -> str:
        return self.definition.id


@dataclass(frozen=True, slots=True)
class MeasureEntry:
    """A measure of the catalogue, as the checks of a self-assessment need it."""

    facts: ItemFacts
    owners: frozenset[str]


@dataclass(frozen=True, slots=True)
class ReceivedEvent:
    """A KPI observation or milestone report as stored (history, as_of queries, replay checks).
    `key` is its identity (CloudEvents source + id): one stored per key."""

    key: str
    event_id: str
    source: str
    type: str
    subject_id: str
    as_of: date | None
    # The sender's time, or the time it was processed when it has none.
    time: datetime
    # Its record's offset in the subject's partition (UNKNOWN_ARRIVAL if not read from Kafka).
    arrival: int
    data: Mapping[str, Any] | None


@dataclass(frozen=True, slots=True)
class ReceivedAssessment:
    """A measure's self-assessment as stored."""

    key: str
    event_id: str
    measure_id: str
    rating: str
    as_of: date
    narrative: str | None
    time: datetime


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """A stored observation or report as history readers see it."""

    event_id: str
    as_of: date
    time: datetime
    arrival: int
    data: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class SubjectStatus:
    """A subject's latest stored status, as rollups and scorecards read it."""

    subject_id: str
    kind: SubjectKind
    status: Status
    measure_id: str
    ministries: tuple[str, ...]


# --- ports -----------------------------------------------------------------------------------


class Catalogue(Protocol):
    """The kpi service's copy of the catalogue, read as definitions."""

    async def all_entries(self) -> list[CatalogueEntry]: ...

    async def entries(self, ids: Sequence[str]) -> dict[str, CatalogueEntry]:
        """Entries by id, active or retired; ids not in the catalogue are left out."""
        ...

    async def measure(self, measure_id: str) -> MeasureEntry | None: ...

    async def measures_of(self, ids: Sequence[str]) -> set[str]:
        """The measures the given KPIs and milestones belong to."""
        ...


class StateRepository(Protocol):
    """Versions of each subject's state. Every write is an insert of a new version."""

    def iter_versions(self) -> AsyncIterator[StateVersion]:
        """Every stored version, superseded ones not yet compacted included."""
        ...

    async def unacknowledged(self, versions: Collection[StateVersion]) -> list[StateVersion]:
        """Those of `versions` whose outbox was not acknowledged."""
        ...

    async def insert(self, versions: Sequence[StateVersion]) -> None:
        """Store new versions; VersionConflictError for versions already stored."""
        ...

    async def acknowledge(self, versions: Sequence[StateVersion]) -> None:
        """Record that the versions' status changes were published (Kafka acknowledged)."""
        ...

    async def record_transitions(self, versions: Sequence[StateVersion]) -> None:
        """Keep the versions' status changes (the open-data export); idempotent by event id."""
        ...

    async def delete_written_before(
        self, cutoff: datetime, partitions: Collection[int] | None
    ) -> None:
        """Compaction: drop versions (and their acknowledgements) written before `cutoff` in
        `partitions` (None: all)."""
        ...

    async def latest(self, subject_id: str) -> SubjectState | None: ...

    async def statuses_for_measure(self, measure_id: str) -> list[SubjectStatus]: ...

    async def statuses_for_ministry(self, ministry: str) -> list[SubjectStatus]: ...


class EventStore(Protocol):
    """The events the service received, kept once each."""

    async def store_events(self, events: Sequence[ReceivedEvent]) -> dict[str, int]:
        """Store what is new; for those already stored, the arrival they were first stored
        with, by key."""
        ...

    async def store_assessments(self, assessments: Sequence[ReceivedAssessment]) -> None: ...

    async def history(
        self,
        subject_id: str,
        limit: int,
        until: date | None = None,
        *,
        max_time_ms: int | None = None,
    ) -> list[StoredEvent]:
        """The subject's latest `limit` events (as_of <= `until` if given), ascending by as_of;
        HistoryReadTooLong past `max_time_ms` on the server."""
        ...

    async def latest_assessment(self, measure_id: str) -> SelfAssessment | None: ...

    async def latest_assessments(self, measure_ids: Sequence[str]) -> dict[str, SelfAssessment]: ...


class DivergenceStore(Protocol):
    """The divergence recorded per measure (domain/divergence.py)."""

    async def get(self, measure_id: str) -> DivergenceRecord | None: ...

    async def put(self, measure_id: str, record: DivergenceRecord) -> None: ...

    async def assessed(self, measure_ids: Sequence[str]) -> set[str]:
        """Those of the measures that have a record (were ever assessed)."""
        ...


class OwnershipLedger(Protocol):
    """The kpi service's copy of the ownership record (ingest owns it)."""

    async def apply_received(self, change: ItemOwnersChanged, now: datetime) -> bool:
        """Apply a change ingest published; False when it was applied already."""
        ...


class StatusSink(Protocol):
    """Where status changes go: the status topic, or a replay's collector."""

    async def publish(self, events: list[PublishedEvent]) -> None: ...


class Ownership(Protocol):
    """Which subjects this instance writes: the partitions its consumer holds
    (shared.partitions.PartitionOwnership)."""

    @property
    def generation(self) -> int:
        """Changes whenever the assignment does (caches of owned state are then reloaded)."""
        ...

    def owns(self, key: str) -> bool: ...

    def partition_of(self, key: str) -> int | None: ...

    def owned_partitions(self) -> Collection[int] | None: ...

    async def wait_assigned(self) -> bool: ...


class StateCache(Protocol):
    """The latest state version of every subject an instance owns, held in memory."""

    def get(self, subject_id: str) -> StateVersion | None: ...

    def put(self, version: StateVersion) -> None: ...

    def put_if_newer(self, version: StateVersion) -> None:
        """Keep `version` unless a later one of its subject is held."""
        ...

    def summary(self, subject_id: str) -> StateSummary | None: ...

    def summaries(self) -> Iterator[StateSummary]: ...

    def __len__(self) -> int: ...


class HistoryReadTooLong(Exception):  # noqa: N818 - reads as a condition
    """A history read used up its time bound on the database server (maxTimeMS)."""

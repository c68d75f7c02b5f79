"""In-memory implementations of the kpi service's ports, for the unit tier.

Small and honest: each keeps what the MongoDB adapter would store and answers as it does, and
both pass the same contract tests (tests/support/contracts/kpi.py). Not for production: nothing
survives the process.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime

from services.kpi.domain.divergence import DivergenceRecord
from services.kpi.domain.model import AssessmentRating, SelfAssessment
from services.kpi.domain.transition import SubjectState
from services.kpi.ports import (
    CatalogueEntry,
    MeasureEntry,
    PublishedEvent,
    ReceivedAssessment,
    ReceivedEvent,
    StateSummary,
    StateVersion,
    StoredEvent,
    SubjectStatus,
    VersionConflictError,
)
from shared.events.contracts import ItemOwnersChanged


def _status(state: SubjectState) -> SubjectStatus:
    return SubjectStatus(
        subject_id=state.subject_id,
        kind=state.kind,
        status=state.evaluation.status,
        measure_id=state.measure_id,
        ministries=state.ministries,
    )


class MemoryStateCache:
    """The StateCache port, holding the records as they are."""

    def __init__(self) -> None:
        self._versions: dict[str, StateVersion] = {}

    def get(self, subject_id: str) -> StateVersion | None:
        return self._versions.get(subject_id)

    def put(self, version: StateVersion) -> None:
        self._versions[version.subject_id] = version

    def put_if_newer(self, version: StateVersion) -> None:
        current = self._versions.get(version.subject_id)
        if current is None or version.version > current.version:
            self.put(version)

    def summary(self, subject_id: str) -> StateSummary | None:
        version = self._versions.get(subject_id)
        return None if version is None else StateSummary.of(version)

    def summaries(self) -> Iterator[StateSummary]:
        return iter([StateSummary.of(v) for v in self._versions.values()])

    def __len__(self) -> int:
        return len(self._versions)


@dataclass
class MemoryKpiRepository:
    """The StateRepository and EventStore ports."""

    versions: dict[tuple[str, int], StateVersion] = field(default_factory=dict)
    acknowledged: dict[tuple[str, int], StateVersion] = field(default_factory=dict)
    transitions: dict[str, PublishedEvent] = field(default_factory=dict)
    events: dict[str, ReceivedEvent] = field(default_factory=dict)
    assessments: dict[str, ReceivedAssessment] = field(default_factory=dict)

    # --- StateRepository ----------------------------------------------------------------------

    async def iter_versions(self) -> AsyncIterator[StateVersion]:
        for version in list(self.versions.values()):
            yield version

    async def unacknowledged(self, versions: Collection[StateVersion]) -> list[StateVersion]:
        return [v for v in versions if (v.subject_id, v.version) not in self.acknowledged]

    async def insert(self, versions: Sequence[StateVersion]) -> None:
        # Unordered, as insert_many(ordered=False): what is new gets in, the rest conflicts.
        conflicts = []
        for version in versions:
            key = (version.subject_id, version.version)
            if key in self.versions:
                conflicts.append(f"{version.subject_id}@{version.version:010d}")
            else:
                self.versions[key] = version
        if conflicts:
            raise VersionConflictError(conflicts)

    async def acknowledge(self, versions: Sequence[StateVersion]) -> None:
        for version in versions:
            self.acknowledged.setdefault((version.subject_id, version.version), version)

    async def record_transitions(self, versions: Sequence[StateVersion]) -> None:
        for version in versions:
            for event in version.outbox:
                self.transitions.setdefault(event["id"], event)

    async def delete_written_before(
        self, cutoff: datetime, partitions: Collection[int] | None
    ) -> None:
        def doomed(version: StateVersion) -> bool:
            in_scope = partitions is None or version.partition in partitions
            return in_scope and version.written_at < cutoff

        self.versions = {k: v for k, v in self.versions.items() if not doomed(v)}
        self.acknowledged = {k: v for k, v in self.acknowledged.items() if not doomed(v)}

    def _latest(self) -> dict[str, StateVersion]:
        latest: dict[str, StateVersion] = {}
        for version in self.versions.values():
            current = latest.get(version.subject_id)
            if current is None or version.version > current.version:
                latest[version.subject_id] = version
        return latest

    async def latest(self, subject_id: str) -> SubjectState | None:
        version = self._latest().get(subject_id)
        return None if version is None else version.state

    async def statuses_for_measure(self, measure_id: str) -> list[SubjectStatus]:
        return [
            _status(v.state) for v in self._latest().values() if v.state.measure_id == measure_id
        ]

    async def statuses_for_ministry(self, ministry: str) -> list[SubjectStatus]:
        return [_status(v.state) for v in self._latest().values() if ministry in v.state.ministries]

    # --- EventStore ---------------------------------------------------------------------------

    async def store_events(self, events: Sequence[ReceivedEvent]) -> dict[str, int]:
        first_arrivals: dict[str, int] = {}
        for event in events:
            stored = self.events.get(event.key)
            if stored is None:
                self.events[event.key] = event
            else:
                first_arrivals[event.key] = stored.arrival
        return first_arrivals

    async def store_assessments(self, assessments: Sequence[ReceivedAssessment]) -> None:
        for assessment in assessments:
            self.assessments.setdefault(assessment.key, assessment)

    async def history(
        self,
        subject_id: str,
        limit: int,
        until: date | None = None,
        *,
        max_time_ms: int | None = None,
    ) -> list[StoredEvent]:
        found = [
            e
            for e in self.events.values()
            if e.subject_id == subject_id
            and e.as_of is not None
            and (until is None or e.as_of <= until)
        ]
        found.sort(key=lambda e: (e.as_of or date.min, e.key), reverse=True)
        return [_stored(e) for e in found[:limit]][::-1]

    async def latest_assessment(self, measure_id: str) -> SelfAssessment | None:
        return (await self.latest_assessments([measure_id])).get(measure_id)

    async def latest_assessments(self, measure_ids: Sequence[str]) -> dict[str, SelfAssessment]:
        latest: dict[str, ReceivedAssessment] = {}
        for a in self.assessments.values():
            if a.measure_id not in measure_ids:
                continue
            current = latest.get(a.measure_id)
            key = (a.as_of, a.time, a.event_id)
            if current is None or key > (current.as_of, current.time, current.event_id):
                latest[a.measure_id] = a
        return {m: _assessment(a) for m, a in latest.items()}


def _stored(event: ReceivedEvent) -> StoredEvent:
    assert event.as_of is not None
    return StoredEvent(
        event_id=event.event_id,
        as_of=event.as_of,
        time=event.time,
        # As the MongoDB adapter: history reads do not fetch the arrival.
        arrival=-1,
        data=dict(event.data or {}),
    )


def _assessment(a: ReceivedAssessment) -> SelfAssessment:
    return SelfAssessment(
        event_id=a.event_id,
        measure_id=a.measure_id,
        rating=AssessmentRating(a.rating),
        as_of=a.as_of,
        received_at=a.time,
        comment=a.narrative,
    )


class MemoryCatalogue:
    """The Catalogue port over entries given in code; retired ones are found by id only."""

    def __init__(
        self,
        entries: Iterable[CatalogueEntry] = (),
        measures: dict[str, MeasureEntry] | None = None,
    ) -> None:
        self.items = {entry.id: entry for entry in entries}
        self.measures = dict(measures or {})

    def put(self, entry: CatalogueEntry) -> None:
        self.items[entry.id] = entry

    async def all_entries(self) -> list[CatalogueEntry]:
        return [e for e in self.items.values() if not e.facts.retired]

    async def entries(self, ids: Sequence[str]) -> dict[str, CatalogueEntry]:
        return {i: self.items[i] for i in ids if i in self.items}

    async def measure(self, measure_id: str) -> MeasureEntry | None:
        return self.measures.get(measure_id)

    async def measures_of(self, ids: Sequence[str]) -> set[str]:
        return {
            self.items[i].definition.measure_id
            for i in ids
            if i in self.items and self.items[i].definition.measure_id
        }


class MemoryDivergenceStore:
    def __init__(self) -> None:
        self.records: dict[str, DivergenceRecord] = {}

    async def get(self, measure_id: str) -> DivergenceRecord | None:
        return self.records.get(measure_id)

    async def put(self, measure_id: str, record: DivergenceRecord) -> None:
        self.records[measure_id] = record

    async def assessed(self, measure_ids: Sequence[str]) -> set[str]:
        return {m for m in measure_ids if m in self.records}


class MemoryOwnershipLedger:
    """Applies a change to the catalogue's entry (its owners), once per change id."""

    def __init__(self, catalogue: MemoryCatalogue) -> None:
        self.catalogue = catalogue
        self.applied: list[str] = []
        # The entries as loaded, before any change: what a reset returns to.
        self._released: dict[str, CatalogueEntry] = {}

    async def apply_received(self, change: ItemOwnersChanged, now: datetime) -> bool:
        if change.change_id in self.applied:
            return False
        self.applied.append(change.change_id)
        entry = self.catalogue.items.get(change.item_id)
        if entry is None:
            return True
        released = self._released.setdefault(change.item_id, entry)
        if change.action == "set":
            owners = tuple(dict.fromkeys(change.owners))
            definition = entry.definition.model_copy(update={"ministries": owners})
            self.catalogue.put(replace(entry, definition=definition, owners=frozenset(owners)))
        else:
            self.catalogue.put(released)
        return True


class CollectingSink:
    """The StatusSink port keeping what it is given (a replay's collector, a test's topic)."""

    def __init__(self) -> None:
        self.events: list[PublishedEvent] = []

    async def publish(self, events: list[PublishedEvent]) -> None:
        self.events.extend(events)


__all__ = [
    "CollectingSink",
    "MemoryCatalogue",
    "MemoryDivergenceStore",
    "MemoryKpiRepository",
    "MemoryOwnershipLedger",
    "MemoryStateCache",
]

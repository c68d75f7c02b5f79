"""KPI use cases: fold events into per-subject state, re-evaluate, publish status changes.

Every write path (consumer batches, the time-driven sweep) goes through `_update`, under one
lock per service instance:
  1. store the raw events (idempotent by source + id);
  2. fold the events into the subjects' latest states (idempotent, order-independent), evaluate;
  3. insert a new state version per changed subject, carrying the status changes it produced in
     its outbox: state and status changes are stored together, in one insert, or not at all;
  4. record the transitions, publish the outboxes to Kafka, wait for the acknowledgements, then
     record the acknowledgement.
A crash between 3 and 4 leaves versions unacknowledged; they are published when the states are
next loaded (the event ids are deterministic, so a status change published twice is recognised
downstream).

The latest version of every subject is held in memory: this instance's consumer holds the
partitions of the subjects it writes (records are keyed by KPI id), so nothing else writes
them. The cache is reloaded whenever the partition assignment changes; a version another
writer stored in between fails on its unique id (VersionConflictError), the cache is dropped and the
batch is redone. Reads therefore cost nothing per event and writes are inserts, whose cost does
not grow with history (FerretDB scans a whole collection for every update or delete).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, Protocol

import structlog

from services.kpi.adapters.definitions import Definition, definition_from_catalogue
from services.kpi.adapters.repository import (
    KpiRepository,
    VersionConflictError,
    state_document,
    state_from_document,
    version_id,
)
from services.kpi.adapters.state_cache import StateCache
from services.kpi.domain.model import (
    UNKNOWN_ARRIVAL,
    MilestoneReport,
    Observation,
    ReportedState,
)
from services.kpi.domain.transition import NumberedChange, advance
from services.kpi.metrics import KpiMetrics
from shared.catalogue_store import CatalogueStore
from shared.consumer import Rejection, arrival_of
from shared.events.cloudevents import CloudEvent
from shared.events.contracts import (
    BAD_STATUSES,
    KpiObserved,
    KpiStatusChanged,
    MeasureAssessed,
    MilestoneReported,
    Status,
    new_status_event,
    status_severity,
)
from shared.events.validation import (
    ItemFacts,
    Rules,
    by_priority,
    check_event,
    facts_from_catalogue,
    owners_from_catalogue,
)
from shared.logs import caused_by
from shared.partitions import PartitionOwnership

log = structlog.stdlib.get_logger("kpi")
Document = dict[str, Any]


def _misplaced(events: Iterable[CloudEvent]) -> list[Rejection]:
    """Events read from a record not keyed by their subject: arrival order (the offset) is only
    an order within one partition, so a subject's events must all be keyed by its id (as
    ingest keys them); a record written straight to Kafka under another key could otherwise
    jump the order of its subject's revisions."""
    rejections = []
    for event in events:
        arrival = arrival_of(event)
        subject = _subject_of(event)
        if arrival is not None and arrival.key != subject.encode():
            rejections.append(
                Rejection(
                    event,
                    "partition_key_mismatch",
                    f"the record key {arrival.key!r} is not the subject id {subject!r}: one "
                    "subject's events share one partition, whose order decides which revision "
                    "counts",
                )
            )
    return rejections


def _arrival(event: CloudEvent) -> int:
    """The event's record offset in its partition: the order the system received it in (one
    KPI's events share a partition: ingest keys them by the KPI id)."""
    arrival = arrival_of(event)
    return UNKNOWN_ARRIVAL if arrival is None else arrival.offset


def _domain_event(event: CloudEvent, arrival: int, now: datetime) -> Observation | MilestoneReport:
    data = event.data
    if isinstance(data, KpiObserved):
        return Observation(
            event_id=event.id,
            value=data.value,
            as_of=data.as_of,
            received_at=event.time or now,
            arrival=arrival,
        )
    assert isinstance(data, MilestoneReported)
    return MilestoneReport(
        event_id=event.id,
        state=ReportedState(data.state.value),
        percent_complete=data.percent_complete,
        expected_completion=data.expected_completion,
        as_of=data.as_of,
        received_at=event.time or now,
        arrival=arrival,
    )


def status_event(numbered: NumberedChange, time: datetime) -> Document:
    """A status change as the CloudEvent published on the status topic (JSON)."""
    event = numbered.change
    change = KpiStatusChanged(
        kpi_id=event.subject_id,
        kind=event.subject_kind.value,
        measure_id=numbered.measure_id,
        ministries=list(numbered.ministries),
        previous_status=(
            None if event.previous_status is None else Status(event.previous_status.value)
        ),
        status=Status(event.new_status.value),
        episode_id=event.episode_id,
        evaluated_on=event.evaluated_on,
        explanation=event.explanation.model_dump(mode="json"),
    )
    return new_status_event(change, event_id=numbered.event_id, time=time).to_json_dict()


class StatusSink(Protocol):
    """Where status changes go: the status topic (StatusPublisher), or a replay's collector."""

    async def publish(self, events: list[dict[str, Any]]) -> None: ...


CATALOGUE_TTL_S = 60.0
# The checks ingest makes, made again on every record (an event about an entry retired after
# ingest accepted it is still recorded).
KAFKA_RULES = Rules(refuse_retired=False)
SWEEP_CHUNK = 500


@dataclass
class KpiHandler:
    repository: KpiRepository
    catalogue: CatalogueStore
    publisher: StatusSink
    metrics: KpiMetrics
    clock: Callable[[], datetime]
    ownership: PartitionOwnership = field(default_factory=PartitionOwnership.everything)
    # Real time, for the `time` rule (senders stamp real time; `clock` may be simulated).
    wall_clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    # Compact once at least this many superseded versions have accumulated (and at least twice
    # as many as there are live ones): each compaction costs one scan of the collection.
    prune_threshold: int = 1000
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    _states: StateCache | None = field(default=None, init=False)
    _states_generation: int = field(default=-1, init=False)
    _pending: list[Document] = field(default_factory=list, init=False)
    _superseded: int = field(default=0, init=False)
    # Parsed definitions, not catalogue documents: an instance may own tens of thousands.
    _catalogue: dict[str, Definition] = field(default_factory=dict, init=False)
    # What the shared validation needs of each entry: its facts and its owners.
    _facts: dict[str, tuple[ItemFacts, frozenset[str]]] = field(default_factory=dict, init=False)
    _catalogue_loaded_at: float = field(default=float("-inf"), init=False)

    async def on_subject_events(self, events: Sequence[CloudEvent]) -> Sequence[Rejection]:
        """Handler for kpi.observed and milestone.reported batches."""
        by_subject: dict[str, list[CloudEvent]] = {}
        for event in events:
            by_subject.setdefault(_subject_of(event), []).append(event)
        async with self.lock:
            definitions = await self._definitions(list(by_subject))
            rejections = [
                Rejection(event, "unknown_subject", f"{subject!r} is not in the catalogue")
                for subject, subject_events in by_subject.items()
                if subject not in definitions
                for event in subject_events
            ]
            # A record may have reached the topic by another path than ingest: the checks
            # ingest makes are made again here (docs/trust-model.md).
            now, received_at = self.clock(), self.wall_clock()
            for subject, subject_events in by_subject.items():
                if subject not in definitions:
                    continue
                facts, owners = self._facts[subject]
                for event in subject_events:
                    rejection = _recheck(event, facts, owners, now, received_at)
                    if rejection is not None:
                        rejections.append(rejection)
            rejected = {r.event.dedup_key for r in rejections}
            rejections.extend(_misplaced(e for e in events if e.dedup_key not in rejected))
            rejected = {r.event.dedup_key for r in rejections}
            accepted = [e for e in events if e.dedup_key not in rejected]
            # An event already stored (redelivered, or sent again with the same id) keeps the
            # arrival it was first stored with: a copy arriving later must not make an old
            # value the latest revision again.
            first_arrivals = await self.repository.store_observations(
                [_raw_document(e, now) for e in accepted]
            )
            grouped: dict[str, list[Observation | MilestoneReport]] = {}
            for event in accepted:
                arrival = first_arrivals.get(event.dedup_key, _arrival(event))
                grouped.setdefault(_subject_of(event), []).append(
                    _domain_event(event, arrival, now)
                )
            await self._update({s: definitions[s] for s in grouped}, grouped)
        return rejections

    async def on_assessments(self, events: Sequence[CloudEvent]) -> Sequence[Rejection]:
        documents = []
        rejections: list[Rejection] = []
        now, received_at = self.clock(), self.wall_clock()
        measures: dict[str, Document | None] = {}
        for event in events:
            data = event.data
            assert isinstance(data, MeasureAssessed)
            if data.measure_id not in measures:
                measures[data.measure_id] = await self.catalogue.measure(data.measure_id)
            document = measures[data.measure_id]
            facts = None if document is None else facts_from_catalogue(document, "measure")
            owners = owners_from_catalogue(document)
            rejection = _recheck(event, facts, owners, now, received_at)
            if rejection is not None:
                rejections.append(rejection)
                continue
            documents.append(
                {
                    "_id": event.dedup_key,
                    "event_id": event.id,
                    "measure_id": data.measure_id,
                    "rating": data.rating.value,
                    "as_of": data.as_of.isoformat(),
                    "narrative": data.narrative,
                    "time": event.time or now,
                }
            )
        await self.repository.store_assessments(documents)
        return rejections

    async def sweep(self) -> int:
        """Re-evaluate this instance's catalogue subjects for today: deadlines pass, reports go
        stale. Waits until the consumer holds its partitions (it decides which subjects), and
        goes through them in chunks, letting consumer batches in between."""
        await self.ownership.wait_assigned()
        items = await self.catalogue.all_items()
        changed = 0
        for start in range(0, len(items), SWEEP_CHUNK):
            async with self.lock:
                chunk = {
                    definition.id: definition
                    for definition in map(
                        definition_from_catalogue, items[start : start + SWEEP_CHUNK]
                    )
                    if self.ownership.owns(definition.id)
                }
                changed += await self._update(chunk, {})
        async with self.lock:
            await self._compact(force=True)
            self._refresh_status_gauge()
        return changed

    async def redefine(self, subject_ids: Sequence[str]) -> None:
        """Catalogue entries changed in the database at run time (an ownership change,
        services/kpi/ownership.py): their cached definitions are read again, and the subjects
        this instance writes are re-evaluated, so their states (scorecards, metrics by ministry)
        and later status changes carry the change."""
        async with self.lock:
            for subject_id in subject_ids:
                self._catalogue.pop(subject_id, None)
            definitions = await self._definitions(list(subject_ids))
            owned = {s: d for s, d in definitions.items() if self.ownership.owns(s)}
            if owned:
                await self._update(owned, {})
                self._refresh_status_gauge()

    async def flush_outboxes(self) -> None:
        """Publish status changes stored but not acknowledged (after a crash)."""
        async with self.lock:
            await self._latest_states()
            await self._publish_pending()

    async def _definitions(self, subject_ids: list[str]) -> dict[str, Definition]:
        """Definitions by id, from a copy of the catalogue refreshed every CATALOGUE_TTL_S; ids
        not in the copy (a catalogue loaded since, or retired items) are looked up at once."""
        if time.monotonic() - self._catalogue_loaded_at > CATALOGUE_TTL_S:
            documents = await self.catalogue.all_items()
            self._catalogue = {doc["_id"]: definition_from_catalogue(doc) for doc in documents}
            self._facts = {doc["_id"]: _facts_of(doc) for doc in documents}
            self._catalogue_loaded_at = time.monotonic()
        missing = [s for s in subject_ids if s not in self._catalogue]
        if missing:
            for subject_id, doc in (await self.catalogue.items(missing)).items():
                self._catalogue[subject_id] = definition_from_catalogue(doc)
                self._facts[subject_id] = _facts_of(doc)
        return {s: self._catalogue[s] for s in subject_ids if s in self._catalogue}

    async def _latest_states(self) -> StateCache:
        """The latest state version of every subject this instance owns, loaded whole from the
        database when the partition assignment has changed since the last load."""
        if self._states is not None and self._states_generation == self.ownership.generation:
            return self._states
        generation = self.ownership.generation
        # Streamed into the compact cache: decoding every version at once would make the
        # load, not the steady state, the instance's peak memory.
        states = StateCache()
        with_outbox: list[Document] = []
        owned = 0
        async for version in self.repository.iter_state_versions():
            if not self.ownership.owns(version["subject_id"]):
                continue
            owned += 1
            states.put_if_newer(version)
            if version["has_outbox"]:
                with_outbox.append(version)
        acknowledged = await self.repository.acknowledged_version_ids()
        self._pending = sorted(
            (v for v in with_outbox if v["_id"] not in acknowledged),
            key=lambda v: (v["subject_id"], v["version"]),
        )
        self._superseded = owned - len(states)
        self._states = states
        self._states_generation = generation
        self._refresh_status_gauge()
        return self._states

    async def _update(
        self,
        definitions: dict[str, Definition],
        new_events: dict[str, list[Observation | MilestoneReport]],
    ) -> int:
        now = self.clock()
        today = now.date()
        states = await self._latest_states()
        # Status changes left from an earlier failed publish go out before newer ones.
        await self._publish_pending()
        versions: list[Document] = []
        for subject_id, definition in definitions.items():
            doc = states.get(subject_id)
            updated = self._evaluate(definition, doc, new_events.get(subject_id, ()), today, now)
            if updated is not None:
                versions.append(updated)
        try:
            await self.repository.insert_states(versions)
        except VersionConflictError:
            # Another writer got there first: drop the cache so the retry starts from the
            # stored states; versions that did get in are found unacknowledged on reload.
            self._states = None
            raise
        for version in versions:
            if states.summary(version["subject_id"]) is not None:
                self._superseded += 1
            states.put(version)
            if version["outbox"]:
                self._pending.append(version)
        transitions = sum(len(v["outbox"]) for v in versions)
        await self._publish_pending()
        await self._compact()
        return transitions

    def _evaluate(
        self,
        definition: Definition,
        doc: Document | None,
        events: Iterable[Observation | MilestoneReport],
        today: date,
        now: datetime,
    ) -> Document | None:
        """The subject's next state version, or None when nothing changed."""
        previous = None if doc is None else state_from_document(doc)
        step = advance(definition, previous, events, today)
        if step.state is None:
            return None
        outbox: list[Document] = []
        if step.change is not None:
            # Stamped with the real time, even when the service's clock runs ahead
            # (simulations): downstream latencies are measured from it.
            outbox.append(status_event(step.change, datetime.now(UTC)))
        version = int(doc["version"]) + 1 if doc else 1
        return {
            "_id": version_id(definition.id, version),
            "version": version,
            **state_document(step.state),
            "outbox": outbox,
            "has_outbox": bool(outbox),
            "updated_at": now,
            **self._placement(definition.id),
        }

    async def _publish_pending(self) -> None:
        """Record, publish and acknowledge the status changes of unacknowledged versions."""
        if not self._pending:
            return
        pending = self._pending
        events = [event for version in pending for event in version["outbox"]]
        await self.repository.record_transitions(
            [
                {
                    "_id": event["id"],
                    "subject_id": version["subject_id"],
                    "seq": int(event["id"].rsplit(":", 1)[1]),
                    "event": event,
                }
                for version in pending
                for event in version["outbox"]
            ]
        )
        await self.publisher.publish(events)
        await self.repository.acknowledge_outboxes(pending)
        self._pending = []
        for event in events:
            self._count_transition(event)

    def _placement(self, subject_id: str) -> Document:
        """Where and when a version is written: what compaction selects on."""
        return {
            "written_at": datetime.now(UTC),
            "partition": self.ownership.partition_of(subject_id),
        }

    async def _compact(self, *, force: bool = False) -> None:
        """Drop superseded versions without naming them: FerretDB evaluates `$in` against
        every document it scans, so deleting thousands of ids costs minutes. Instead copy every
        live state this instance owns to a new version, then delete, in one statement with
        plain comparisons, every version of its partitions written before the copies."""
        states = self._states
        if states is None or self._states_generation != self.ownership.generation:
            return
        threshold = max(self.prune_threshold, 2 * len(states))
        if not self._superseded or (self._superseded < threshold and not force):
            return
        await self._publish_pending()  # an unacknowledged version must not be dropped
        cutoff = datetime.now(UTC)
        copies = []
        for summary in list(states.summaries()):
            subject_id = summary.subject_id
            doc = states.get(subject_id)
            assert doc is not None
            version = int(doc["version"]) + 1
            copies.append(
                {
                    **doc,
                    "_id": version_id(subject_id, version),
                    "version": version,
                    "outbox": [],
                    "has_outbox": False,
                    **self._placement(subject_id),
                }
            )
        try:
            await self.repository.insert_states(copies)
        except VersionConflictError:
            self._states = None
            raise
        for copy in copies:
            states.put(copy)
        await self.repository.delete_versions_written_before(
            cutoff, self.ownership.owned_partitions()
        )
        self._superseded = 0

    def _count_transition(self, event: Document) -> None:
        data = event["data"]
        self.metrics.transitions.labels(
            from_status=data.get("previous_status") or "none", to_status=data["status"]
        ).inc()
        direction = _direction(data.get("previous_status"), data["status"])
        # Keep the by-status gauge current between sweeps (which recount from the states).
        for ministry in data.get("ministries") or ["unassigned"]:
            if direction is not None:
                counter = self.metrics.slips if direction == "slip" else self.metrics.recoveries
                counter.labels(ministry=ministry, kind=data["kind"], status=data["status"]).inc()
            if data.get("previous_status"):
                self.metrics.subjects_by_status.labels(
                    status=data["previous_status"], kind=data["kind"], ministry=ministry
                ).dec()
            self.metrics.subjects_by_status.labels(
                status=data["status"], kind=data["kind"], ministry=ministry
            ).inc()
        log.info(
            "status_changed",
            kpi_id=data["kpi_id"],
            event_id=event["id"],
            caused_by=caused_by(data.get("explanation")),
            previous_status=data.get("previous_status"),
            status=data["status"],
        )

    def _refresh_status_gauge(self) -> None:
        counts: dict[tuple[str, str, str], int] = {}
        for summary in self._states.summaries() if self._states else ():
            for ministry in summary.ministries or ("unassigned",):
                key = (summary.status, summary.kind, ministry)
                counts[key] = counts.get(key, 0) + 1
        self.metrics.subjects_by_status.clear()
        for (status, kind, ministry), count in counts.items():
            self.metrics.subjects_by_status.labels(status=status, kind=kind, ministry=ministry).set(
                count
            )


def _direction(previous: str | None, new: str) -> str | None:
    """ "slip" for a change to a worse bad status, "recovery" for one out of a bad status to a
    better one, None otherwise (e.g. no_data to on_track)."""
    new_status = Status(new)
    old_status = None if previous is None else Status(previous)
    worse = old_status is None or status_severity(new_status) > status_severity(old_status)
    if new_status in BAD_STATUSES and worse:
        return "slip"
    if old_status in BAD_STATUSES and status_severity(new_status) < status_severity(old_status):
        return "recovery"
    return None


def _recheck(
    event: CloudEvent,
    facts: ItemFacts | None,
    owners: frozenset[str],
    now: datetime,
    received_at: datetime,
) -> Rejection | None:
    """The shared validation's verdict on a record, as a dead-letter reason (None: accept)."""
    violations = check_event(
        event, item=facts, owners=owners, now=now, received_at=received_at, rules=KAFKA_RULES
    )
    if not violations:
        return None
    first = by_priority(violations)[0]
    return Rejection(event, first.code, "; ".join(v.reason for v in violations))


def _facts_of(document: Document) -> tuple[ItemFacts, frozenset[str]]:
    return facts_from_catalogue(document), owners_from_catalogue(document)


def _subject_of(event: CloudEvent) -> str:
    data = event.data
    if isinstance(data, KpiObserved):
        return data.kpi_id
    if isinstance(data, MilestoneReported):
        return data.milestone_id
    return event.subject or ""


def _raw_document(event: CloudEvent, now: datetime) -> Document:
    data = event.data
    as_of = getattr(data, "as_of", None)
    return {
        "_id": event.dedup_key,
        "event_id": event.id,
        "source": event.source,
        "type": event.type,
        "subject_id": _subject_of(event),
        "as_of": as_of.isoformat() if as_of else None,
        # Without a sender's time, the time it was processed stands in for the receive time.
        "time": event.time or now,
        "arrival": _arrival(event),
        "data": event.data.model_dump(mode="json") if hasattr(event.data, "model_dump") else None,
    }

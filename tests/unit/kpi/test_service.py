"""The kpi service layer (evaluation, state cache, outbox, compaction, sweep, ownership changes,
divergences), built from the composition root on the in-memory adapters: no server needed."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from services.kpi.adapters.catalogue import catalogue_entry, measure_entry
from services.kpi.adapters.memory import (
    CollectingSink,
    MemoryCatalogue,
    MemoryDivergenceStore,
    MemoryKpiRepository,
    MemoryOwnershipLedger,
    MemoryStateCache,
)
from services.kpi.composition import EVENT_TYPES, KpiAdapters, KpiService, build_kpi
from services.kpi.metrics import KpiMetrics
from services.kpi.ports import Ownership, PublishedEvent, VersionConflictError
from shared.consumer_types import Arrival, set_arrival
from shared.events.contracts import (
    INGEST_SOURCE,
    ItemOwnersChangedEvent,
    KpiObservedEvent,
    MeasureAssessedEvent,
    owners_changed_event_id,
)
from shared.partitions import PartitionOwnership, partition_for

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
MEASURE = "m.service"


def kpi_document(kpi_id: str, ministries: tuple[str, ...] = ("digital",)) -> dict[str, Any]:
    """A KPI going from 10 (FY2020) to 90 by the end of FY2030: about 8 points a year."""
    return {
        "_id": kpi_id,
        "id": kpi_id,
        "kind": "kpi",
        "measure_id": MEASURE,
        "unit": "%",
        "direction": "increase",
        "accumulation": "level",
        "ministries": list(ministries),
        "state": "active",
        "baseline": {"value": 10.0, "as_of": "2021-03-31"},
        "targets": [{"value": 90.0, "deadline": "2031-03-31", "deadline_text": "2030年度末"}],
    }


def observed(kpi_id: str, value: float, as_of: date, offset: int = 0) -> KpiObservedEvent:
    """A kpi.observed event as the consumer runner hands it over (read from the KPI's
    partition at `offset`)."""
    event = KpiObservedEvent.model_validate(
        {
            "specversion": "1.0",
            "id": secrets.token_hex(8),
            "source": "/ministries/digital",
            "type": KpiObservedEvent.TYPE,
            "subject": kpi_id,
            "time": NOW,
            "partitionkey": kpi_id,
            "data": {"kpi_id": kpi_id, "value": value, "as_of": as_of},
        }
    )
    set_arrival(event, Arrival("events", 0, offset, 0, kpi_id.encode()))
    return event


class FailingSink:
    """A status topic that is down."""

    async def publish(self, events: list[PublishedEvent]) -> None:
        raise ConnectionError("broker unavailable")


@dataclass
class Clock:
    """Service time a test moves."""

    now: datetime = NOW

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Ticking:
    """Real time, a millisecond later at every reading (compaction deletes what was written
    before its cutoff)."""

    now: datetime = NOW

    def __call__(self) -> datetime:
        self.now += timedelta(milliseconds=1)
        return self.now


@dataclass
class World:
    """The in-memory adapters one or more service instances share."""

    ids: list[str]
    repository: MemoryKpiRepository = field(default_factory=MemoryKpiRepository)
    sink: CollectingSink = field(default_factory=CollectingSink)
    divergences: MemoryDivergenceStore = field(default_factory=MemoryDivergenceStore)
    clock: Clock = field(default_factory=Clock)
    wall_clock: Ticking = field(default_factory=Ticking)

    def __post_init__(self) -> None:
        self.catalogue = MemoryCatalogue(
            [catalogue_entry(kpi_document(i)) for i in self.ids],
            measures={
                MEASURE: measure_entry({"_id": MEASURE, "ministries": ["digital"]}),
            },
        )
        self.ledger = MemoryOwnershipLedger(self.catalogue)

    def service(
        self,
        *,
        publisher: Any = None,
        ownership: Ownership | None = None,
        prune_threshold: int = 1000,
    ) -> KpiService:
        return build_kpi(
            KpiAdapters(
                catalogue=self.catalogue,
                states=self.repository,
                events=self.repository,
                ownership_ledger=self.ledger,
                publisher=publisher or self.sink,
                new_state_cache=MemoryStateCache,
                divergences=self.divergences,
            ),
            metrics=KpiMetrics.create(CollectorRegistry()),
            clock=self.clock,
            wall_clock=self.wall_clock,
            ownership=ownership,
            prune_threshold=prune_threshold,
        )


def status_ids(events: list[PublishedEvent]) -> list[str]:
    return [e["id"] for e in events if e["type"] == "shinchoku.kpi.status_changed.v1"]


async def test_an_observation_is_stored_folded_and_its_status_change_published() -> None:
    """One event: stored once, a state version with the change in its outbox, the change
    published (deterministic id), recorded and acknowledged."""
    world = World(["kpi.a"])
    service = world.service()
    event = observed("kpi.a", 40.0, date(2025, 3, 31))
    assert await service.subject_events.on_subject_events([event]) == []
    assert [e.event_id for e in world.repository.events.values()] == [event.id]
    (stored,) = world.repository.versions.values()
    assert stored.state.evaluation.status.value == "on_track"
    assert status_ids(world.sink.events) == ["status:kpi.a:1"]
    assert list(world.repository.transitions) == ["status:kpi.a:1"]
    assert await world.repository.unacknowledged([stored]) == []


async def test_a_redelivered_batch_changes_nothing() -> None:
    """The same events handed over again store no new version and publish nothing."""
    world = World(["kpi.a"])
    service = world.service()
    batch = [observed("kpi.a", 40.0, date(2025, 3, 31), offset=1)]
    await service.subject_events.on_subject_events(batch)
    await service.subject_events.on_subject_events(batch)
    assert len(world.repository.versions) == 1
    assert len(world.sink.events) == 1


async def test_events_that_cannot_be_processed_are_rejected_with_their_reason() -> None:
    """An unknown subject, a record keyed by another id and a forged source are rejected;
    the good event beside them is folded."""
    world = World(["kpi.a"])
    service = world.service()
    unknown = observed("kpi.unknown", 1.0, date(2025, 3, 31))
    misplaced = observed("kpi.a", 2.0, date(2025, 3, 31), offset=7)
    set_arrival(misplaced, Arrival("events", 0, 7, 0, b"other"))
    forged = observed("kpi.a", 3.0, date(2025, 3, 31)).model_copy(
        update={"source": "/ministries/mic"}
    )
    good = observed("kpi.a", 41.0, date(2025, 3, 31), offset=8)
    rejections = await service.subject_events.on_subject_events([unknown, misplaced, forged, good])
    reasons = {r.event.id: r.reason for r in rejections}
    assert reasons[unknown.id] == "unknown_subject"
    assert reasons[misplaced.id] == "partition_key_mismatch"
    assert forged.id in reasons
    assert good.id not in reasons
    assert [e.event_id for e in world.repository.events.values()] == [good.id]


async def test_a_status_change_whose_publish_failed_goes_out_once_on_the_next_load() -> None:
    """The version is stored with its change; a restarted instance publishes it exactly once."""
    world = World(["kpi.a"])
    broken = world.service(publisher=FailingSink())
    with pytest.raises(ConnectionError):
        await broken.subject_events.on_subject_events([observed("kpi.a", 40.0, date(2025, 3, 31))])
    assert world.sink.events == []
    restarted = world.service()
    await restarted.updater.flush_outboxes()
    await restarted.updater.flush_outboxes()
    assert status_ids(world.sink.events) == ["status:kpi.a:1"]


async def test_a_second_writer_is_refused_and_its_retry_starts_from_the_store() -> None:
    """Two instances cached version 1; the second to write version 2 gets a conflict, and
    redoing its batch folds its event into the first one's version."""
    world = World(["kpi.b"])
    first, second = world.service(), world.service()
    await first.subject_events.on_subject_events([observed("kpi.b", 40.0, date(2024, 3, 31), 1)])
    await second.updater.flush_outboxes()  # loads version 1 into its cache
    await first.subject_events.on_subject_events([observed("kpi.b", 45.0, date(2024, 9, 30), 2)])
    late = observed("kpi.b", 48.0, date(2025, 3, 31), 3)
    with pytest.raises(VersionConflictError):
        await second.subject_events.on_subject_events([late])
    await second.subject_events.on_subject_events([late])
    latest = max(world.repository.versions.values(), key=lambda v: v.version)
    assert latest.version == 3
    window = latest.state.aggregate.window
    assert [o.as_of for o in window] == [date(2024, 3, 31), date(2024, 9, 30), date(2025, 3, 31)]


async def test_compaction_keeps_the_live_version_and_the_history_goes_on() -> None:
    """With a threshold of 3, twelve batches leave at most four versions; a fresh instance
    continues from the newest."""
    world = World(["kpi.c"])
    service = world.service(prune_threshold=3)
    for month in range(1, 13):
        event = observed("kpi.c", 30.0 + month, date(2024, month, 1), offset=month)
        await service.subject_events.on_subject_events([event])
    assert len(world.repository.versions) <= 4
    latest = max(world.repository.versions.values(), key=lambda v: v.version)
    assert latest.version > 12
    await world.service().subject_events.on_subject_events(
        [observed("kpi.c", 60.0, date(2025, 1, 1), offset=13)]
    )
    assert max(v.version for v in world.repository.versions.values()) == latest.version + 1


async def test_the_sweep_evaluates_owned_subjects_as_time_passes() -> None:
    """Each instance sweeps the subjects of its partitions only; a report going stale changes
    a status with no event."""
    ids = [f"kpi.sweep-{i:02d}" for i in range(12)]
    world = World(ids)
    halves = ({0, 1, 2}, {3, 4, 5})
    swept: list[set[str]] = []
    for half in halves:
        ownership = PartitionOwnership("events")
        ownership.assign(half, 6)
        before = {v.subject_id for v in world.repository.versions.values()}
        await world.service(ownership=ownership).sweep.sweep()
        swept.append({v.subject_id for v in world.repository.versions.values()} - before)
    assert not swept[0] & swept[1]
    assert swept[0] | swept[1] == set(ids)
    for half, subjects in zip(halves, swept, strict=True):
        assert {partition_for(s, 6) for s in subjects} <= half

    stale = World(["kpi.d"])
    service = stale.service()
    await service.subject_events.on_subject_events([observed("kpi.d", 40.0, date(2025, 3, 31))])
    stale.clock.now = NOW + timedelta(days=800)
    assert await service.sweep.sweep() == 1
    assert status_ids(stale.sink.events) == ["status:kpi.d:1", "status:kpi.d:2"]


async def test_an_ownership_change_re_evaluates_its_item_with_the_new_owners() -> None:
    """A change from ingest is applied once and the item's state names the new owners, with
    no status change; one from another source is rejected."""
    world = World(["kpi.e"])
    service = world.service()
    await service.subject_events.on_subject_events([observed("kpi.e", 40.0, date(2025, 3, 31))])
    change_id = "a" * 24
    change = ItemOwnersChangedEvent.model_validate(
        {
            "specversion": "1.0",
            "id": owners_changed_event_id(change_id),
            "source": INGEST_SOURCE,
            "type": ItemOwnersChangedEvent.TYPE,
            "subject": "kpi.e",
            "time": NOW,
            "data": {
                "item_id": "kpi.e",
                "action": "set",
                "owners": ["mic"],
                "reason": "reorganisation",
                "changed_by": "admin",
                "changed_at": NOW,
                "change_id": change_id,
            },
        }
    )
    forged = change.model_copy(update={"source": "/ministries/digital"})
    handlers = service.handlers()
    rejections = await handlers[ItemOwnersChangedEvent.TYPE]([change, forged])
    assert [r.event.source for r in rejections] == ["/ministries/digital"]
    assert world.ledger.applied == [change_id]
    latest = max(world.repository.versions.values(), key=lambda v: v.version)
    assert latest.state.ministries == ("mic",)
    assert status_ids(world.sink.events) == ["status:kpi.e:1"]


async def test_an_assessment_is_stored_and_its_measure_checked_for_divergence() -> None:
    """A self-assessment more optimistic than the computed status is stored and the measure's
    divergence recorded (and published when it changes)."""
    world = World(["kpi.f"])
    service = world.service()
    handlers = service.handlers()
    assert set(handlers) == set(EVENT_TYPES)
    await handlers[KpiObservedEvent.TYPE]([observed("kpi.f", 11.0, date(2025, 3, 31))])
    assessed = MeasureAssessedEvent.model_validate(
        {
            "specversion": "1.0",
            "id": secrets.token_hex(8),
            "source": "/ministries/digital",
            "type": MeasureAssessedEvent.TYPE,
            "subject": MEASURE,
            "time": NOW,
            "data": {"measure_id": MEASURE, "rating": "on_track", "as_of": date(2025, 3, 31)},
        }
    )
    assert await handlers[MeasureAssessedEvent.TYPE]([assessed]) == []
    assert [a.event_id for a in world.repository.assessments.values()] == [assessed.id]
    assert MEASURE in world.divergences.records
    rollup = await service.queries.measure_rollup(MEASURE)
    assert rollup.self_assessment is not None
    assert rollup.self_assessment.event_id == assessed.id

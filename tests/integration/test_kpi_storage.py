"""The kpi service's insert-only state storage on the real FerretDB: outbox recovery after a
failed publish, a second writer of a version, pruning, and sweeps split by partition."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from pymongo.asynchronous.database import AsyncDatabase

from services.kpi.adapters.definitions import definition_from_catalogue
from services.kpi.adapters.repository import (
    OBSERVATIONS,
    OUTBOX_ACKS,
    STATES,
    TRANSITIONS,
    KpiRepository,
    VersionConflictError,
    ensure_indexes,
)
from services.kpi.composition import KpiService, build_kpi, mongo_adapters
from services.kpi.metrics import KpiMetrics
from services.kpi.replay import CollectingPublisher
from shared.catalogue_store import CatalogueStore
from shared.consumer import Arrival, set_arrival
from shared.events.contracts import KpiObservedEvent
from shared.mongo import MongoClient
from shared.partitions import PartitionOwnership, partition_for

pytestmark = pytest.mark.integration

TODAY = datetime(2025, 6, 1, tzinfo=UTC)
Document = dict[str, Any]


def synthetic_kpi(kpi_id: str) -> Document:
    """A KPI going from 10 (FY2020) to 90 by the end of FY2030: about 8 points a year."""
    return {
        "_id": kpi_id,
        "id": kpi_id,
        "kind": "kpi",
        "measure_id": "m.storage-test",
        "unit": "%",
        "direction": "increase",
        "accumulation": "level",
        "ministries": ["digital"],
        "state": "active",
        "baseline": {"value": 10.0, "as_of": "2021-03-31"},
        "targets": [{"value": 90.0, "deadline": "2031-03-31", "deadline_text": "2030年度末"}],
    }


def observed(kpi_id: str, value: float, as_of: date) -> KpiObservedEvent:
    return KpiObservedEvent.model_validate(
        {
            "specversion": "1.0",
            "id": secrets.token_hex(8),
            "source": "/ministries/digital",
            "type": KpiObservedEvent.TYPE,
            "subject": kpi_id,
            "time": datetime.now(UTC),
            "partitionkey": kpi_id,
            "data": {"kpi_id": kpi_id, "value": value, "as_of": as_of},
        }
    )


class FailingPublisher:
    """A status topic that is down."""

    async def publish(self, events: list[Document]) -> None:
        raise ConnectionError("broker unavailable")


@pytest.fixture
async def database(mongo: MongoClient) -> AsyncIterator[AsyncDatabase[Document]]:
    name = f"kpi_storage_{secrets.token_hex(4)}"
    db = mongo[name]
    await ensure_indexes(db)
    yield db
    await mongo.drop_database(name)


async def with_catalogue(mongo: MongoClient, db: AsyncDatabase[Document], ids: list[str]) -> None:
    store = CatalogueStore(mongo, db.name)
    for kpi_id in ids:
        await store.upsert_item(synthetic_kpi(kpi_id))


def handler_for(
    mongo: MongoClient,
    db: AsyncDatabase[Document],
    publisher: Any,
    ownership: PartitionOwnership | None = None,
    prune_threshold: int = 1000,
) -> KpiService:
    return build_kpi(
        mongo_adapters(db, CatalogueStore(mongo, db.name), publisher),
        metrics=KpiMetrics.create(CollectorRegistry()),
        clock=lambda: TODAY,
        ownership=ownership,
        prune_threshold=prune_threshold,
    )


async def test_a_status_change_whose_publish_failed_goes_out_when_the_state_is_next_loaded(
    mongo: MongoClient, database: AsyncDatabase[Document]
) -> None:
    """A version stored with its status change but never acknowledged is published (and its
    transition recorded) by the next handler that loads the states, exactly once."""
    await with_catalogue(mongo, database, ["kpi.storage-a"])
    broken = handler_for(mongo, database, FailingPublisher())
    with pytest.raises(ConnectionError):
        await broken.subject_events.on_subject_events(
            [observed("kpi.storage-a", 40.0, date(2025, 3, 31))]
        )
    assert await database[STATES].count_documents({"has_outbox": True}) == 1
    assert await database[OUTBOX_ACKS].count_documents({}) == 0

    collected = CollectingPublisher()
    restarted = handler_for(mongo, database, collected)
    await restarted.updater.flush_outboxes()
    await restarted.updater.flush_outboxes()
    assert [e["id"] for e in collected.events] == ["status:kpi.storage-a:1"]
    assert collected.events[0]["data"]["status"] == "on_track"
    assert await database[TRANSITIONS].count_documents({}) == 1
    assert await database[OUTBOX_ACKS].count_documents({}) == 1


async def test_a_second_writer_of_a_version_is_refused_and_its_retry_starts_from_the_store(
    mongo: MongoClient, database: AsyncDatabase[Document]
) -> None:
    """Two handlers that both cached version 1: the second to write version 2 gets a
    VersionConflictError; redoing its batch folds its event into the first one's version."""
    await with_catalogue(mongo, database, ["kpi.storage-b"])
    first = handler_for(mongo, database, CollectingPublisher())
    second = handler_for(mongo, database, CollectingPublisher())
    await first.subject_events.on_subject_events(
        [observed("kpi.storage-b", 40.0, date(2024, 3, 31))]
    )
    await second.updater.flush_outboxes()  # loads version 1 into its cache
    await first.subject_events.on_subject_events(
        [observed("kpi.storage-b", 45.0, date(2024, 9, 30))]
    )
    late = observed("kpi.storage-b", 48.0, date(2025, 3, 31))
    with pytest.raises(VersionConflictError):
        await second.subject_events.on_subject_events([late])
    await second.subject_events.on_subject_events([late])

    state = await KpiRepository(database).state("kpi.storage-b")
    assert state is not None
    assert state["version"] == 3
    window = [o["as_of"] for o in state["aggregate"]["window"]]
    assert window == ["2024-03-31", "2024-09-30", "2025-03-31"]


async def test_compaction_keeps_only_the_live_version_and_the_history_goes_on(
    mongo: MongoClient, database: AsyncDatabase[Document]
) -> None:
    """With a compaction threshold of 3, twelve batches leave at most four versions of the KPI;
    the newest holds the last observation and a fresh handler continues from it."""
    await with_catalogue(mongo, database, ["kpi.storage-c"])
    handler = handler_for(mongo, database, CollectingPublisher(), prune_threshold=3)
    for month in range(1, 13):
        await handler.subject_events.on_subject_events(
            [observed("kpi.storage-c", 30.0 + month, date(2024, month, 1))]
        )
    versions = [doc async for doc in database[STATES].find({"subject_id": "kpi.storage-c"})]
    assert len(versions) <= 4
    latest = max(versions, key=lambda doc: doc["version"])
    assert latest["aggregate"]["window"][-1]["as_of"] == "2024-12-01"
    assert latest["version"] > 12  # compaction copies count as versions
    fresh = handler_for(mongo, database, CollectingPublisher())
    await fresh.subject_events.on_subject_events(
        [observed("kpi.storage-c", 60.0, date(2025, 1, 1))]
    )
    state = await KpiRepository(database).state("kpi.storage-c")
    assert state is not None
    assert state["version"] == latest["version"] + 1
    assert state["seq"] >= latest["seq"]


async def test_compaction_leaves_other_partitions_alone(
    mongo: MongoClient, database: AsyncDatabase[Document]
) -> None:
    """An instance compacting its partitions deletes no version of another instance's KPIs."""
    ids = [f"kpi.storage-part-{i:02d}" for i in range(12)]
    await with_catalogue(mongo, database, ids)
    halves = ({0, 1, 2}, {3, 4, 5})
    handlers = []
    for half in halves:
        ownership = PartitionOwnership("events")
        ownership.assign(half, 6)
        handlers.append(
            (
                ownership,
                handler_for(mongo, database, CollectingPublisher(), ownership, prune_threshold=1),
            )
        )
    for round_ in range(3):
        for ownership, handler in handlers:
            owned = [i for i in ids if ownership.owns(i)]
            await handler.subject_events.on_subject_events(
                [observed(i, 30.0 + round_, date(2024, 1 + round_, 1)) for i in owned]
            )
    states = await KpiRepository(database).all_states()
    assert set(states) == set(ids)
    # Both compacted on their third round: one version per KPI is left.
    assert await database[STATES].count_documents({}) == len(ids)
    for subject, doc in states.items():
        assert doc["aggregate"]["window"][-1]["as_of"] == "2024-03-01", subject


async def test_each_instance_sweeps_only_the_kpis_of_its_partitions(
    mongo: MongoClient, database: AsyncDatabase[Document]
) -> None:
    """Two instances holding disjoint halves of six partitions sweep disjoint sets of KPIs
    whose union is the whole catalogue."""
    ids = [f"kpi.storage-sweep-{i:02d}" for i in range(24)]
    await with_catalogue(mongo, database, ids)
    halves = ({0, 1, 2}, {3, 4, 5})
    swept: list[set[str]] = []
    for half in halves:
        ownership = PartitionOwnership("events")
        ownership.assign(half, 6)
        before = set((await KpiRepository(database).all_states()).keys())
        await handler_for(mongo, database, CollectingPublisher(), ownership).sweep.sweep()
        after = set((await KpiRepository(database).all_states()).keys())
        swept.append(after - before)
    assert swept[0]
    assert swept[1]
    assert not swept[0] & swept[1]
    assert swept[0] | swept[1] == set(ids)
    for half, subjects in zip(halves, swept, strict=True):
        assert {partition_for(s, 6) for s in subjects} <= half


async def test_observations_lists_the_latest_ones_up_to_a_date_in_ascending_order(
    mongo: MongoClient, database: AsyncDatabase[Document]
) -> None:
    """The history query returns the newest `limit` events (optionally up to a date), oldest
    first, so a long history shows its recent end."""
    await with_catalogue(mongo, database, ["kpi.storage-d"])
    handler = handler_for(mongo, database, CollectingPublisher())
    days = [date(2024, month, 1) for month in range(1, 7)]
    await handler.subject_events.on_subject_events(
        [observed("kpi.storage-d", 30.0, day) for day in days]
    )
    repository = KpiRepository(database)
    latest = await repository.history("kpi.storage-d", limit=3)
    assert [o.as_of.isoformat() for o in latest] == ["2024-04-01", "2024-05-01", "2024-06-01"]
    until = await repository.history("kpi.storage-d", limit=2, until=date(2024, 3, 15))
    assert [o.as_of.isoformat() for o in until] == ["2024-02-01", "2024-03-01"]


def arrived(event: KpiObservedEvent, offset: int, key: bytes | None = None) -> KpiObservedEvent:
    """The event as the consumer runner hands it over: read at `offset` of the KPI's partition,
    from a record keyed by the KPI id (unless `key` says otherwise)."""
    set_arrival(event, Arrival("events", 0, offset, 0, key or event.data.kpi_id.encode()))
    return event


async def test_a_correction_arriving_later_wins_over_a_report_dated_in_the_far_future(
    mongo: MongoClient, database: AsyncDatabase[Document]
) -> None:
    """Issue 12 item 3: a report whose sender dated it 9999-12-31 is corrected by a later report
    for the same as_of sent with the real time; a copy of the first report sent again later
    (same id) keeps its first arrival and does not undo the correction. The live state and the
    as-of evaluation rebuilt from the stored events agree."""
    await with_catalogue(mongo, database, ["kpi.storage-rev"])
    handler = handler_for(mongo, database, CollectingPublisher())
    as_of = date(2025, 3, 31)
    forged = observed("kpi.storage-rev", 90.0, as_of).model_copy(
        update={"time": datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)}
    )
    correction = observed("kpi.storage-rev", 40.0, as_of)
    await handler.subject_events.on_subject_events([arrived(forged, 10)])
    await handler.subject_events.on_subject_events([arrived(correction, 11)])
    resent = forged.model_copy()
    await handler.subject_events.on_subject_events([arrived(resent, 12)])

    state = await KpiRepository(database).state("kpi.storage-rev")
    assert state is not None
    (latest,) = state["aggregate"]["window"]
    assert (latest["event_id"], latest["value"], latest["arrival"]) == (correction.id, 40.0, 11)
    assert state["evaluation"]["latest_value"] == 40.0
    queries = handler.queries
    item = await CatalogueStore(mongo, database.name).item("kpi.storage-rev")
    assert item is not None
    definition = definition_from_catalogue(item)
    assert (await queries.evaluation_as_of(definition, TODAY.date())).latest_value == 40.0


async def test_a_record_keyed_by_another_id_is_rejected_not_ordered(
    mongo: MongoClient, database: AsyncDatabase[Document]
) -> None:
    """A record written straight to Kafka under a key other than its KPI's id (so on another
    partition, where its offset says nothing about the KPI's order) is rejected with its reason
    and neither stored nor folded; the correctly keyed event beside it is."""
    await with_catalogue(mongo, database, ["kpi.storage-key"])
    handler = handler_for(mongo, database, CollectingPublisher())
    misplaced = arrived(observed("kpi.storage-key", 99.0, date(2025, 3, 31)), 500, b"other")
    placed = arrived(observed("kpi.storage-key", 41.0, date(2025, 3, 31)), 3)
    rejections = await handler.subject_events.on_subject_events([misplaced, placed])
    assert [(r.event.id, r.reason) for r in rejections] == [
        (misplaced.id, "partition_key_mismatch")
    ]
    assert "b'other'" in rejections[0].detail
    state = await KpiRepository(database).state("kpi.storage-key")
    assert state is not None
    assert [o["event_id"] for o in state["aggregate"]["window"]] == [placed.id]
    stored = await database[OBSERVATIONS].distinct("event_id", {"subject_id": "kpi.storage-key"})
    assert stored == [placed.id]

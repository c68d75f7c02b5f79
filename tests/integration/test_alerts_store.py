"""The alerts service's MongoDB adapter on the real FerretDB: dedup, leases, claims, newest
KPI state. These are the guarantees the delivery pipeline relies on."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from pymongo.asynchronous.database import AsyncDatabase

from services.alerts.adapters.indexes import ensure_indexes
from services.alerts.composition import mongo_stores
from services.alerts.ports import Document, NewDelivery, Stores
from shared.mongo import MongoClient
from shared.settings import MongoSettings

pytestmark = pytest.mark.integration


@pytest.fixture
async def db(
    mongo: MongoClient, mongo_config: MongoSettings
) -> AsyncIterator[AsyncDatabase[Document]]:
    name = f"{mongo_config.database}_alst_{secrets.token_hex(3)}"
    database = mongo[name]
    await ensure_indexes(database)
    yield database
    await mongo.drop_database(name)


def now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


@pytest.fixture
def stores(db: AsyncDatabase[Document]) -> Stores:
    return mongo_stores(db)


def delivery(i: int, at: datetime, subscription: str = "sub_a") -> NewDelivery:
    return NewDelivery(
        message_id=f"msg_{i:04d}",
        subscription_id=subscription,
        type="kpi.slipped",
        body="{}",
        notification_ids=(),
        kinds=(),
        kpi_ids=(),
        changed_at=(),
        created_at=at,
    )


async def test_notifications_are_recorded_once_per_key(stores: Stores) -> None:
    """insert_new stores new keys and reports repeats (same key) as not inserted."""
    store = stores.notifications
    first = await store.insert_new([{"_id": "k1"}, {"_id": "k2"}])
    again = await store.insert_new([{"_id": "k2"}, {"_id": "k3"}, {"_id": "k1"}])
    assert [d["_id"] for d in first] == ["k1", "k2"]
    assert [d["_id"] for d in again] == ["k3"]


async def test_concurrent_workers_never_start_the_same_attempt(
    stores: Stores,
) -> None:
    """Eight concurrent workers leasing and fencing twenty due deliveries: every delivery's
    first attempt is started exactly once (FerretDB's find_one_and_update alone may hand one
    document to two callers; the attempt's unique log entry decides)."""
    queue, leases = stores.deliveries, stores.leases
    t = now()
    for i in range(20):
        assert await queue.create(delivery(i, t))

    async def worker() -> list[str]:
        started = []
        while batch := await leases.lease_batch(t, timedelta(seconds=60), limit=3):
            for leased in batch:
                fenced = await leases.start_attempt(leased, t, timedelta(seconds=60))
                if fenced is not None:
                    started.append(fenced[0]["_id"])
        return started

    results = await asyncio.gather(*(worker() for _ in range(8)))
    started = [attempt for result in results for attempt in result]
    assert sorted(started) == [f"msg_{i:04d}#1" for i in range(20)]


async def test_an_attempt_left_by_a_dead_worker_is_taken_over_after_its_lease(
    stores: Stores,
) -> None:
    """While the first worker's attempt is within its lease nobody else starts it; after the
    lease it is logged as interrupted and the next attempt number is used."""
    queue, leases, log = stores.deliveries, stores.leases, stores.log
    t = now()
    await queue.create(delivery(1, t))
    (leased,) = await leases.lease_batch(t, timedelta(seconds=10), limit=5)
    first = await leases.start_attempt(leased, t, timedelta(seconds=10))
    assert first is not None
    assert (
        await leases.start_attempt(leased, t + timedelta(seconds=5), timedelta(seconds=10)) is None
    )
    later = t + timedelta(seconds=11)
    (again,) = await leases.lease_batch(later, timedelta(seconds=10), limit=5)
    second = await leases.start_attempt(again, later, timedelta(seconds=10))
    assert second is not None
    assert second[0]["_id"] == "msg_0001#2"
    await log.finish_attempt(second[0], {"result": "success", "status_code": 204})
    logged = {d["_id"]: d["result"] for d in await log.attempts("sub_a", limit=10)}
    assert logged == {"msg_0001#1": "interrupted", "msg_0001#2": "success"}


async def test_lease_skips_excluded_subscriptions_and_future_attempts(
    stores: Stores,
) -> None:
    """A busy subscription's deliveries and not-yet-due ones are left alone."""
    queue, leases = stores.deliveries, stores.leases
    t = now()
    await queue.create(delivery(1, t, "busy"))
    await queue.create(delivery(2, t + timedelta(minutes=5), "free"))
    await queue.create(delivery(3, t, "free"))
    leased = await leases.lease_batch(
        t, timedelta(seconds=30), limit=10, exclude_subscriptions=["busy"]
    )
    assert [d["_id"] for d in leased] == ["msg_0003"]
    assert "body" not in leased[0]
    again = await leases.lease_batch(
        t, timedelta(seconds=30), limit=10, exclude_subscriptions=["busy"]
    )
    assert again == []


async def test_an_outcome_never_overwrites_a_later_attempts(
    stores: Stores,
) -> None:
    """The outcome of attempt 1 arriving after attempt 2's is ignored; a final outcome takes
    the message off the queue and into the archive."""
    queue = stores.deliveries
    t = now()
    await queue.create(delivery(1, t))
    stored = await queue.queued("msg_0001")
    assert stored is not None
    assert await queue.update_delivery(stored, {"attempts": 2, "next_attempt_at": t}, attempt=2)
    assert not await queue.update_delivery(stored, {"attempts": 1, "state": "failed"}, attempt=1)
    assert await queue.update_delivery(stored, {"attempts": 3, "state": "delivered"}, attempt=3)
    assert await queue.queued("msg_0001") is None
    assert await queue.state_of("msg_0001") == "delivered"
    (listed,) = await queue.for_subscription(
        "sub_a", state="delivered", since=None, until=None, limit=10
    )
    assert listed["attempts"] == 3
    again = await queue.redeliver("msg_0001", t)
    assert again is not None
    queued = await queue.queued("msg_0001")
    assert queued is not None
    assert (queued["state"], queued["retry_index"], queued["manual"]) == ("pending", 0, True)


async def test_retrying_counts_pending_messages_after_a_failed_attempt(
    stores: Stores,
) -> None:
    """count_retrying (the deliveries_retrying gauge) counts pending messages with a failed
    attempt, not fresh ones, delivered ones or manual redeliveries."""
    queue = stores.deliveries
    t = now()
    for i in (1, 2, 3):
        await queue.create(delivery(i, t))
    assert await queue.count_retrying() == 0
    first, second = await queue.queued("msg_0001"), await queue.queued("msg_0002")
    assert first is not None
    assert second is not None
    failed = {"attempts": 1, "retry_index": 1, "next_attempt_at": t}
    assert await queue.update_delivery(first, failed, attempt=1)
    assert await queue.update_delivery(second, failed, attempt=1)
    assert await queue.count_retrying() == 2
    second = await queue.queued("msg_0002")
    assert second is not None
    done = {"attempts": 2, "retry_index": 2, "state": "delivered"}
    assert await queue.update_delivery(second, done, attempt=2)
    assert await queue.redeliver("msg_0002", t) is not None
    assert await queue.count_retrying() == 1


async def test_claims_give_each_notification_to_one_delivery(
    stores: Stores, db: AsyncDatabase[Document]
) -> None:
    """Two concurrent claims over overlapping notifications split them without overlap, and a
    notification left half-claimed is adopted by its delivery after the recovery delay."""
    store = stores.notifications
    t = now()
    docs = [{"_id": f"n{i}", "state": "waiting"} for i in range(10)]
    await store.insert_new(docs)
    a, b = await asyncio.gather(
        store.claim(docs[:7], "msg_a", t), store.claim(docs[3:], "msg_b", t)
    )
    ids_a = {d["_id"] for d in a}
    ids_b = {d["_id"] for d in b}
    assert not ids_a & ids_b
    assert ids_a | ids_b == {f"n{i}" for i in range(10)}
    assert {d["_id"] for d in await store.in_delivery("msg_a")} == ids_a

    orphan = {"_id": "orphan", "state": "waiting"}
    await store.insert_new([orphan])
    assert [d["_id"] for d in await store.claim([orphan], "msg_c", t)] == ["orphan"]
    await db["alerts_pending"].update_one({"_id": "orphan"}, {"$set": {"state": "waiting"}})
    # (as if its claimer stopped before marking it claimed)
    assert await store.claim([orphan], "msg_d", t) == []
    assert await store.adopt_orphans(["orphan"], t - timedelta(seconds=1)) == 0
    assert await store.adopt_orphans(["orphan"], t) == 1
    (adopted,) = await store.in_delivery("msg_c")
    assert (adopted["_id"], adopted["state"]) == ("orphan", "claimed")
    await store.mark_batched(["orphan"])
    assert await store.in_delivery("msg_c") == []


async def test_a_notification_recorded_but_not_made_pending_is_recovered(
    stores: Stores, db: AsyncDatabase[Document]
) -> None:
    """If recording stopped between the archive and the live set, the redelivered change
    makes the notification pending (and still counts as a repeat)."""
    store = stores.notifications
    await db["alerts_notifications"].insert_one({"_id": "k", "state": "waiting"})
    assert await store.insert_new([{"_id": "k", "state": "waiting"}]) == []
    assert [d["_id"] for d in await store.waiting()] == ["k"]


async def test_kpi_state_keeps_the_newest_change(stores: Stores) -> None:
    """An older change arriving late never overwrites a newer one."""
    states = stores.kpi_states
    t = now()
    await states.record([{"_id": "kpi.a", "changed_at": t, "status": "off_track"}])
    await states.record([{"_id": "kpi.a", "changed_at": t - timedelta(minutes=1), "status": "x"}])
    await states.record(
        [
            {"_id": "kpi.a", "changed_at": t + timedelta(minutes=2), "status": "overdue"},
            {"_id": "kpi.a", "changed_at": t + timedelta(minutes=1), "status": "at_risk"},
            {"_id": "kpi.b", "changed_at": t, "status": "stale"},
        ]
    )
    got = await states.get_many(["kpi.a", "kpi.b", "kpi.c"])
    assert {k: v["status"] for k, v in got.items()} == {"kpi.a": "overdue", "kpi.b": "stale"}


async def test_ending_a_silence_reaches_what_it_muted(
    stores: Stores, db: AsyncDatabase[Document]
) -> None:
    """Notifications muted by a silence (among others) are due for release when it ends."""
    store = stores.notifications
    t = now()
    far = t + timedelta(days=1)
    await db["alerts_pending"].insert_many(
        [
            {"_id": "m1", "state": "muted", "muted_until": far, "muted_by": ["s1", "s2"]},
            {"_id": "m2", "state": "muted", "muted_until": far, "muted_by": ["s2"]},
        ]
    )
    assert await store.end_mutes_by("s1", t) == 1
    assert [d["_id"] for d in await store.muted_due(t)] == ["m1"]


async def test_operator_events_page_by_an_opaque_cursor_newest_first(
    stores: Stores,
) -> None:
    """Five events, some at the same instant, read two at a time by `after`: every event
    once, newest first, and a cursor page does not shift when a newer event arrives."""
    from shared.http.pagination import decode_cursor, encode_cursor

    store = stores.operator_events
    base = now()
    ats = [base, base, base + timedelta(seconds=1), base + timedelta(seconds=2), base]
    for i, at in enumerate(ats):
        await store.record({"_id": f"op_{i}", "at": at, "kind": "k", "reason": "r"})
    seen: list[str] = []
    after = None
    for _ in range(4):
        page = await store.list(limit=2, after=after)
        seen += [doc["_id"] for doc in page]
        if len(page) < 2:
            break
        after = decode_cursor(encode_cursor(page[-1]["at"], page[-1]["_id"]))
        if len(seen) == 2:  # a newer event arriving mid-read is not on the older pages
            await store.record({"_id": "op_new", "at": base + timedelta(seconds=9), "kind": "k"})
    assert seen == ["op_3", "op_2", "op_4", "op_1", "op_0"]

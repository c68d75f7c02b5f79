"""The alerts MongoDB adapters on the real FerretDB, where a crash between two writes leaves
documents the ports cannot make: a claim half-made, a notification archived but not live,
a queue entry without the message's body. (What every implementation guarantees is in the
port contracts, tests/support/contracts/alerts.py.)"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from pymongo.asynchronous.database import AsyncDatabase

from services.alerts.adapters.indexes import ensure_indexes
from services.alerts.composition import mongo_stores
from services.alerts.ports import Document, Stores
from shared.mongo import MongoClient
from shared.settings import MongoSettings
from tests.support.contracts.alerts import delivery, now

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


@pytest.fixture
def stores(db: AsyncDatabase[Document]) -> Stores:
    return mongo_stores(db)


async def test_a_half_claimed_notification_is_adopted_by_its_delivery(
    stores: Stores, db: AsyncDatabase[Document]
) -> None:
    """A notification left half-claimed (its fate recorded, its live entry still waiting) is
    given to no other delivery, and is adopted by its own after the recovery delay."""
    store = stores.notifications
    t = now()
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


async def test_a_leased_queue_entry_carries_scheduling_only(stores: Stores) -> None:
    """The queue holds scheduling fields only (the body stays in the archive), so a lease scan
    stays cheap on FerretDB."""
    t = now()
    await stores.deliveries.create(delivery(1, t))
    (leased,) = await stores.leases.lease_batch(t, timedelta(seconds=30), limit=10)
    assert "body" not in leased
    archived = await stores.deliveries.get("msg_0001")
    assert archived is not None
    assert archived["body"] == "{}"

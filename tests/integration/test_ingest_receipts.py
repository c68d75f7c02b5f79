"""The receipt store and its group commit on the real FerretDB."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from services.ingest.adapters.batching import BatchingInserter, WriterStopped
from services.ingest.adapters.receipts import ReceiptStore
from services.ingest.domain.receipts import new_batch_id
from services.ingest.ports import Claim
from shared.events.contracts import ministry_event_adapter
from shared.mongo import MongoClient
from shared.settings import MongoSettings

pytestmark = pytest.mark.integration

NOW = datetime(2024, 4, 1, 9, 0, tzinfo=UTC)


@pytest.fixture
async def database(mongo: MongoClient, mongo_config: MongoSettings) -> AsyncIterator[str]:
    name = f"{mongo_config.database}_ingrcpt_{secrets.token_hex(3)}"
    yield name
    await mongo.drop_database(name)


def event(event_id: str) -> Any:
    return ministry_event_adapter.validate_python(
        {
            "specversion": "1.0",
            "id": event_id,
            "source": "/ministries/mic",
            "type": "shinchoku.measure.assessed.v1",
            "subject": "m.x",
            "time": NOW,
            "data": {"measure_id": "m.x", "rating": "on_track", "as_of": "2024-03-31"},
        }
    )


async def test_concurrent_inserts_share_writes_and_learn_their_own_duplicates(
    mongo: MongoClient, database: str
) -> None:
    """Twenty concurrent callers with overlapping ids: every id is stored once, and each caller
    is told exactly which of its documents already existed."""
    collection = mongo[database]["coalesced"]
    await collection.insert_many([{"_id": f"taken-{n}"} for n in range(5)])
    async with BatchingInserter(collection) as inserter:
        calls = [
            [{"_id": f"c{caller}-{n}"} for n in range(10)] + [{"_id": f"taken-{caller % 5}"}]
            for caller in range(20)
        ]
        answers = await asyncio.gather(*(inserter.insert(docs) for docs in calls))
    assert all(dups == {10} for dups in answers)
    assert await collection.count_documents({}) == 5 + 20 * 10


async def test_a_closed_inserter_refuses_work(mongo: MongoClient, database: str) -> None:
    """Outside its lifespan the inserter says so instead of hanging."""
    inserter = BatchingInserter(mongo[database]["closed"])
    with pytest.raises(WriterStopped):
        await inserter.insert([{"_id": 1}])


async def test_a_restarted_store_still_knows_accepted_events(
    mongo: MongoClient, database: str
) -> None:
    """Receipts are durable: a new store (a restarted process) sees the accepted event as a
    duplicate."""
    batch = new_batch_id(NOW)
    async with ReceiptStore(mongo, database, takeover_after=timedelta(seconds=20)) as first:
        await first.claim([event("durable")], batch, NOW)
        await first.accept(batch, 1, NOW)
    async with ReceiptStore(mongo, database, takeover_after=timedelta(seconds=20)) as second:
        later = NOW + timedelta(days=1)
        (claimed,) = await second.claim([event("durable")], new_batch_id(later), later)
    assert claimed.claim is Claim.DUPLICATE

"""A SIGKILL between archiving a webhook message and queueing it (two inserts) must not lose the
message: recovery queues a message that is archived but neither queued nor finished. On the
real FerretDB, with the alerts pipeline harness and a real receiver."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import timedelta

import pytest

from harness.webhooks import webhook_receiver
from services.alerts.adapters.delivery_documents import delivery_document
from services.alerts.adapters.mongo import DELIVERIES, QUEUE
from shared.events.contracts import Status
from shared.mongo import MongoClient
from shared.settings import MongoSettings
from tests.integration.test_alerts_pipeline import Harness, alerts_harness

pytestmark = pytest.mark.integration
S = Status


@pytest.fixture
async def pipeline(mongo: MongoClient, mongo_config: MongoSettings) -> AsyncIterator[Harness]:
    async with alerts_harness(mongo, mongo_config.database) as harness:
        yield harness


async def test_an_archived_but_unqueued_message_is_sent_when_the_change_is_redelivered(
    pipeline: Harness,
) -> None:
    """No grouping window: the handler archived the message and stopped before queueing it;
    the status change, redelivered (its offset was never committed), gets the message queued
    and sent under its webhook-id, once."""
    async with webhook_receiver() as receiver:
        await pipeline.subscribe(receiver.url)
        event = await pipeline.change("kpi.half", S.ON_TRACK, S.OFF_TRACK)
        (message_id,) = [d["_id"] async for d in pipeline.db[QUEUE].find({})]
        assert await pipeline.db[DELIVERIES].find_one({"_id": message_id}) is not None
        # The crash: archived, never queued.
        await pipeline.db[QUEUE].delete_one({"_id": message_id})
        await pipeline.replay(event)
        await pipeline.worker.drain()
        assert [w.headers["webhook-id"] for w in receiver.received] == [message_id]
        await pipeline.replay(event)
        assert await pipeline.deliver() == 0
        assert len(receiver.attempts) == 1


async def test_a_grouped_message_archived_but_unqueued_is_sent_after_claim_recovery(
    pipeline: Harness,
) -> None:
    """A grouping window: the batcher claimed the notification into a message, archived the
    message and stopped before queueing it; after the claim-recovery delay the message is
    queued and sent under its webhook-id, once."""
    async with webhook_receiver() as receiver:
        await pipeline.subscribe(receiver.url)
        pipeline.batcher.policy = replace(
            pipeline.batcher.policy, grouping_window=timedelta(hours=1)
        )
        pipeline.handler.policy = pipeline.batcher.policy
        await pipeline.change("kpi.half-grouped", S.ON_TRACK, S.OFF_TRACK)
        (waiting,) = await pipeline.stores.notifications.waiting()
        now = pipeline.clock()
        claimed = await pipeline.stores.notifications.claim([waiting], "msg_half", now)
        document = delivery_document(
            pipeline.batcher.delivery_record("msg_half", waiting["subscription_id"], claimed, now)
        )
        # The crash: archived, never queued, the notification still claimed.
        await pipeline.db[DELIVERIES].insert_one(document)
        assert await pipeline.deliver() == 0
        pipeline.clock.advance(seconds=31)
        await pipeline.deliver()
        assert [w.headers["webhook-id"] for w in receiver.received] == ["msg_half"]
        pipeline.clock.advance(seconds=31)
        assert await pipeline.deliver() == 0
        assert len(receiver.attempts) == 1

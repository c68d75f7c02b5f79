"""Receivers that hold an attempt open or answer with a huge body, on real sockets and the real
FerretDB: each attempt ends at its total deadline and is logged as a timeout, the retry waits its
scheduled backoff, the body read stops at the cap, and two attempts of one delivery never
overlap, even with two workers polling the same queue."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta

import pytest

from shared.events.contracts import Status
from shared.mongo import MongoClient
from shared.settings import MongoSettings
from tests.integration.test_alerts_pipeline import Harness, alerts_harness
from tests.support.faults import eventually
from tests.support.raw_receivers import raw_receiver

pytestmark = pytest.mark.integration
S = Status


async def attempts_of(h: Harness, subscription_id: str) -> list[dict[str, object]]:
    return list(
        reversed(await h.commands.attempts(subscription_id, limit=50, since=None, message_id=None))
    )


async def test_a_dripping_receiver_is_cut_at_the_deadline_and_retried_on_schedule(
    mongo: MongoClient, mongo_config: MongoSettings
) -> None:
    """A receiver sending its response a byte at a time is cut at the 1 s total deadline (it
    would never finish): the attempt is logged as a timeout, the delivery is not due again
    before its scheduled backoff (30 s), and at the backoff the next attempt is made."""
    async with (
        alerts_harness(
            mongo,
            mongo_config.database,
            schedule_s=(0, 30, 60),
            timeout_s=1.0,
            lease=timedelta(seconds=3),
            lease_margin=timedelta(seconds=2),
        ) as h,
        raw_receiver("drip", drip_s=0.1) as receiver,
    ):
        sub, _ = await h.subscribe(receiver.url)
        await h.change("kpi.drip", S.ON_TRACK, S.OFF_TRACK)
        assert await h.deliver() == 1
        ((webhook_id, dripped),) = await receiver.wait_finished(1, timeout_s=30)
        assert dripped > 0  # the receiver was still sending when the sender hung up
        (attempt,) = await attempts_of(h, sub)
        assert attempt["result"] == "timeout"
        assert "deadline" in str(attempt["error"])
        assert attempt["status_code"] is None
        (delivery,) = await h.delivery_docs(sub)
        assert delivery["_id"] == webhook_id
        assert delivery["state"] == "pending"
        assert delivery["next_attempt_at"] - delivery["last_attempt_at"] == timedelta(seconds=30)

        # Not due before the backoff: nothing is sent, however often the worker looks.
        h.clock.advance(seconds=29)
        assert await h.worker.drain() == 0
        h.clock.advance(seconds=2)
        assert await h.worker.drain() == 1
        await receiver.wait_finished(2, timeout_s=30)
        first, second = await attempts_of(h, sub)
        assert (first["attempt"], second["attempt"]) == (1, 2)
        assert second["result"] == "timeout"
        (delivery,) = await h.delivery_docs(sub)
        assert delivery["next_attempt_at"] - delivery["last_attempt_at"] == timedelta(seconds=60)
        assert h.metric("shinchoku_alerts_delivery_attempts_total", result="timeout") == 2


async def test_attempts_of_one_delivery_never_overlap(
    mongo: MongoClient, mongo_config: MongoSettings
) -> None:
    """Two workers polling one queue, a receiver that never finishes answering, immediate
    retries: four attempts are made one after the other (never two open at once for the
    webhook-id), each a timeout, none logged as interrupted."""
    async with (
        alerts_harness(
            mongo,
            mongo_config.database,
            schedule_s=(0, 0, 0, 0),
            timeout_s=1.0,
            lease=timedelta(seconds=3),
            lease_margin=timedelta(seconds=2),
        ) as h,
        raw_receiver("drip", drip_s=0.1) as receiver,
    ):
        other = h.another_instance().worker
        sub, _ = await h.subscribe(receiver.url)
        await h.change("kpi.overlap", S.ON_TRACK, S.OFF_TRACK)
        await h.batcher.tick()
        wake_one, wake_two = asyncio.Event(), asyncio.Event()
        loops = [
            asyncio.create_task(h.worker.run(wake_one, poll_s=0.05)),
            asyncio.create_task(other.run(wake_two, poll_s=0.05)),
        ]
        try:
            await receiver.wait_finished(4, timeout_s=60)

            async def failed() -> list[dict[str, object]] | None:
                (delivery,) = await h.delivery_docs(sub)
                return await attempts_of(h, sub) if delivery["state"] == "failed" else None

            logged = await eventually(failed, timeout_s=30, what="four attempts, then failed")
        finally:
            for loop in loops:
                loop.cancel()
            for loop in loops:
                with contextlib.suppress(asyncio.CancelledError):
                    await loop
        (webhook_id,) = set(receiver.most_open)
        assert receiver.most_open[webhook_id] == 1
        assert [a["attempt"] for a in logged] == [1, 2, 3, 4]
        assert {a["result"] for a in logged} == {"timeout"}


async def test_a_huge_response_body_is_read_only_up_to_the_cap(
    mongo: MongoClient, mongo_config: MongoSettings
) -> None:
    """A 2xx with a 10 MB body is a success; only 64 KB of the body is read and the attempt
    log says the rest was left unread."""
    async with (
        alerts_harness(mongo, mongo_config.database) as h,
        raw_receiver("huge", huge_bytes=10 * 1024 * 1024) as receiver,
    ):
        sub, _ = await h.subscribe(receiver.url)
        await h.change("kpi.huge", S.ON_TRACK, S.OFF_TRACK)
        assert await h.deliver() == 1
        await receiver.wait_finished(1, timeout_s=30)
        (attempt,) = await attempts_of(h, sub)
        assert (attempt["result"], attempt["status_code"]) == ("success", 200)
        assert attempt["response_bytes"] == 64 * 1024
        assert attempt["response_truncated"] is True
        (delivery,) = await h.delivery_docs(sub)
        assert delivery["state"] == "delivered"

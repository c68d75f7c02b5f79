"""DeliveryWorker on the in-memory stores: retries on the schedule, Retry-After, 410 Gone,
held messages of a paused subscription, the attempt log."""

from __future__ import annotations

import pytest

from services.alerts.ports import SendResult
from services.alerts.service.delivery import DeliveryWorker
from shared.events.contracts import Status
from tests.unit.alerts.service_harness import alerts, http_error


async def test_a_failed_attempt_is_retried_on_the_schedule_and_logged() -> None:
    """A 500 then a success: the second attempt waits for the schedule's next step (5 s),
    both attempts are logged, the message ends delivered."""
    async with alerts([http_error(500)]) as a:
        sub, _ = await a.subscribe()
        await a.change("kpi.a", Status.ON_TRACK, Status.OFF_TRACK)
        assert await a.graph.worker.drain() == 1
        assert await a.graph.stores.deliveries.count_retrying() == 1
        a.clock.advance(seconds=4)
        assert await a.graph.worker.drain() == 0
        a.clock.advance(seconds=1)
        assert await a.graph.worker.drain() == 1
        attempts = await a.graph.subscriptions.attempts(sub, limit=10, since=None, message_id=None)
        assert [(x["attempt"], x["result"]) for x in attempts] == [
            (2, "success"),
            (1, "http_error"),
        ]
        (message,) = await a.graph.subscriptions.deliveries(
            sub, state=None, since=None, until=None, limit=None
        )
        assert (message["state"], message["attempts"]) == ("delivered", 2)
        assert len({s.headers["webhook-id"] for s in a.sender.sent}) == 1


async def test_retry_after_is_honoured() -> None:
    """A 429 with Retry-After 60 s: no attempt before then."""
    async with alerts([http_error(429, retry_after_s=60)]) as a:
        await a.subscribe()
        await a.change("kpi.a", Status.ON_TRACK, Status.OFF_TRACK)
        await a.graph.worker.drain()
        a.clock.advance(seconds=30)
        assert await a.graph.worker.drain() == 0
        a.clock.advance(seconds=31)
        assert await a.graph.worker.drain() == 1


async def test_the_last_failure_of_the_schedule_fails_the_message() -> None:
    """Every attempt of the schedule fails: the message ends failed, counted once."""
    async with alerts([http_error(503)] * 3, retry_schedule_s=[0, 1]) as a:
        sub, _ = await a.subscribe()
        await a.change("kpi.a", Status.ON_TRACK, Status.OFF_TRACK)
        await a.graph.worker.drain()
        a.clock.advance(seconds=1)
        await a.graph.worker.drain()
        assert await a.graph.stores.deliveries.count_by_state() == {}
        (message,) = await a.graph.subscriptions.deliveries(
            sub, state="failed", since=None, until=None, limit=None
        )
        assert message["attempts"] == 2
        failed = a.metric("shinchoku_alerts_notifications_total", kind="slipped", outcome="failed")
        assert failed == 1


async def test_410_gone_disables_the_endpoint_once() -> None:
    """410 Gone disables the subscription, records one operator event and holds the message;
    resuming sends it."""
    async with alerts([SendResult(410, 0.01, "HTTP 410", None, "http_error")]) as a:
        sub, _ = await a.subscribe()
        await a.change("kpi.a", Status.ON_TRACK, Status.OFF_TRACK)
        await a.graph.worker.drain()
        subscription = await a.graph.subscriptions.subscription(sub)
        assert subscription.state == "disabled"
        (event,) = await a.graph.subscriptions.operator_events(limit=10, subscription_id=sub)
        assert (event.kind, event.last_status_code) == ("endpoint_disabled", 410)
        assert await a.graph.stores.deliveries.count_by_state() == {"held": 1}
        await a.graph.subscriptions.resume(sub)
        assert a.graph.deliveries_due.is_set()
        assert await a.graph.worker.drain() == 1
        assert len(a.sender.sent) == 2


async def test_a_paused_subscription_holds_its_messages() -> None:
    """Paused after the change: the message is held, not sent, until the resume."""
    async with alerts() as a:
        sub, _ = await a.subscribe()
        await a.change("kpi.a", Status.ON_TRACK, Status.OFF_TRACK)
        await a.graph.subscriptions.pause(sub)
        await a.graph.worker.drain()
        assert a.sender.sent == []
        assert await a.graph.stores.deliveries.count_by_state() == {"held": 1}
        await a.graph.subscriptions.resume(sub)
        assert await a.graph.worker.drain() == 1


async def test_a_lease_shorter_than_an_attempt_is_refused() -> None:
    """Two attempts of one delivery must never overlap: the worker refuses such a lease."""
    async with alerts() as a:
        worker = a.graph.worker
        with pytest.raises(ValueError, match="lease"):
            DeliveryWorker(
                stores=worker.stores,
                sender=worker.sender,
                metrics=worker.metrics,
                clock=worker.clock,
                schedule_s=[0],
                lease=worker.lease_margin,
                lease_margin=worker.lease_margin,
                disable_after=worker.disable_after,
            )

"""The alerts pipeline (status change → notification → grouped delivery → signed webhook) on
the real FerretDB and a real HTTP receiver, with a clock the test moves. Kafka is not involved
here: status changes are handed to the handler as the consumer runner would (the e2e tests run
the whole chain)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from pymongo.asynchronous.database import AsyncDatabase
from standardwebhooks.webhooks import Webhook

from services.alerts.adapters.indexes import ensure_indexes
from services.alerts.adapters.webhook_sender import (
    Resolver,
    WebhookSender,
    guarded_client,
    resolve,
)
from services.alerts.composition import AlertsGraph, build_alerts, mongo_stores
from services.alerts.domain.notifications import SubscriptionFilter
from services.alerts.domain.silences import JAPAN, QuietHours, SilenceScope
from services.alerts.metrics import AlertsMetrics
from services.alerts.ports import Document, Stores
from services.alerts.service.batching import Batcher
from services.alerts.service.delivery import DeliveryWorker
from services.alerts.service.silences import SilenceAdmin
from services.alerts.service.status_changes import StatusChangeHandler
from services.alerts.service.subscriptions import SubscriptionAdmin
from services.alerts.settings import AlertsSettings
from shared.events.contracts import (
    KpiStatusChanged,
    KpiStatusChangedEvent,
    Status,
    new_status_event,
)
from shared.mongo import MongoClient
from shared.settings import MongoSettings
from tests.support.webhooks import ReceivedWebhook, webhook_receiver

ALLOWED = ["127.0.0.1/32"]


@dataclass
class Clock:
    """Real time plus an offset the test advances."""

    offset: timedelta = timedelta(0)

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def advance(self, **delta: float) -> None:
        self.offset += timedelta(**delta)


@dataclass
class Harness:
    db: AsyncDatabase[Document]
    stores: Stores
    clock: Clock
    registry: CollectorRegistry
    batcher: Batcher
    handler: StatusChangeHandler
    worker: DeliveryWorker
    commands: SubscriptionAdmin
    silences: SilenceAdmin
    settings: AlertsSettings
    resolver: Resolver
    sequence: dict[str, int] = field(default_factory=dict)

    def another_instance(self) -> AlertsGraph:
        """A second alerts instance on the same database, built the same way."""
        return build_alerts(
            self.settings,
            clock=self.clock,
            stores=self.stores,
            sender=self.worker.sender,
            resolver=self.resolver,
            metrics=self.worker.metrics,
        )

    async def subscribe(self, url: str, **flt: Any) -> tuple[str, str]:
        doc, secret = await self.commands.create_subscription(
            url=url, filter_=SubscriptionFilter(**flt), description="test"
        )
        return doc.id, secret

    async def change(
        self,
        kpi_id: str,
        previous: Status | None,
        status: Status,
        *,
        episode: str | None = "ep1",
        measure_id: str = "m.test",
        ministries: tuple[str, ...] = ("mic",),
    ) -> KpiStatusChangedEvent:
        """Hand one status change to the handler, as the consumer would."""
        n = self.sequence[kpi_id] = self.sequence.get(kpi_id, 0) + 1
        data = KpiStatusChanged(
            kpi_id=kpi_id,
            kind="kpi",
            measure_id=measure_id,
            ministries=list(ministries),
            previous_status=previous,
            status=status,
            episode_id=None if episode is None else f"{kpi_id}:{episode}",
            evaluated_on=date(2026, 4, 1),
            explanation={"rule_id": "kpi.trajectory", "message": "test", "inputs": {"n": n}},
        )
        event = new_status_event(data, event_id=f"status:{kpi_id}:{n}", time=self.clock())
        await self.handler([event])
        return event

    async def replay(self, event: KpiStatusChangedEvent) -> None:
        await self.handler([event])

    async def deliver(self) -> int:
        """Close due windows, release ended mutes and send everything due now."""
        await self.batcher.tick()
        return await self.worker.drain()

    def metric(self, name: str, **labels: str) -> float:
        value = self.registry.get_sample_value(name, labels)
        return 0.0 if value is None else value

    async def delivery_docs(self, subscription_id: str) -> list[Document]:
        return await self.stores.deliveries.for_subscription(
            subscription_id, state=None, since=None, until=None, limit=100
        )


def payload(webhook: ReceivedWebhook) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(webhook.body)
    return body


@contextlib.asynccontextmanager
async def alerts_harness(
    mongo: MongoClient,
    database: str,
    *,
    window_s: float = 0,
    schedule_s: tuple[float, ...] = (0, 0.5, 1, 2),
    reminder_interval: timedelta = timedelta(days=7),
    disable_after: timedelta = timedelta(days=5),
    resolver: Resolver = resolve,
    timeout_s: float = 5.0,
    lease: timedelta = timedelta(seconds=30),
    lease_margin: timedelta = timedelta(seconds=15),
    max_response_bytes: int = 64 * 1024,
) -> AsyncIterator[Harness]:
    name = f"{database}_alerts_{secrets.token_hex(3)}"
    db = mongo[name]
    await ensure_indexes(db)
    clock = Clock()
    registry = CollectorRegistry()
    settings = AlertsSettings(
        public_api_url="http://kpi.test",
        grouping_window_s=window_s,
        retry_schedule_s=list(schedule_s),
        retry_jitter=0,
        reminder_interval_s=reminder_interval.total_seconds(),
        claim_recovery_s=30,
        disable_after_failing_s=disable_after.total_seconds(),
        delivery_timeout_s=timeout_s,
        lease_s=lease.total_seconds(),
        lease_margin_s=lease_margin.total_seconds(),
        max_response_bytes=max_response_bytes,
        allowed_target_networks=ALLOWED,
        secret_overlap_s=timedelta(hours=24).total_seconds(),
    )
    http = guarded_client(allowed=ALLOWED, timeout_s=timeout_s, resolver=resolver)
    graph = build_alerts(
        settings,
        clock=clock,
        stores=mongo_stores(db),
        sender=WebhookSender(http, deadline_s=timeout_s, max_response_bytes=max_response_bytes),
        resolver=resolver,
        metrics=AlertsMetrics.create(registry),
    )
    harness = Harness(
        db=db,
        stores=graph.stores,
        clock=clock,
        registry=registry,
        batcher=graph.batcher,
        handler=graph.status_changes,
        worker=graph.worker,
        commands=graph.subscriptions,
        silences=graph.silences,
        settings=settings,
        resolver=resolver,
    )
    try:
        yield harness
    finally:
        await http.aclose()
        await mongo.drop_database(name)


pytestmark = pytest.mark.integration
S = Status


@pytest.fixture
async def pipeline(mongo: MongoClient, mongo_config: MongoSettings) -> AsyncIterator[Harness]:
    async with alerts_harness(mongo, mongo_config.database) as harness:
        yield harness


async def test_a_slip_becomes_one_signed_webhook_and_repeats_do_not_notify_again(
    pipeline: Harness,
) -> None:
    """A slip is delivered once, verifiably signed; the same event replayed, and a further slip
    within the same episode and kind, are counted as duplicates and not sent."""
    async with webhook_receiver() as receiver:
        sub, secret = await pipeline.subscribe(receiver.url, kpis=["kpi.a"])
        event = await pipeline.change("kpi.a", S.ON_TRACK, S.AT_RISK)
        assert await pipeline.worker.drain() == 1
        (webhook,) = receiver.received
        body = Webhook(secret).verify(webhook.body, webhook.headers)
        assert body["type"] == "kpi.slipped"
        assert body["data"]["status_event_id"] == event.id
        assert body["data"]["link"] == "http://kpi.test/v1/kpis/kpi.a"
        assert webhook.headers["webhook-id"].startswith("msg_")

        await pipeline.replay(event)
        await pipeline.change("kpi.a", S.AT_RISK, S.OFF_TRACK)
        assert await pipeline.deliver() == 0
        assert len(receiver.received) == 1
        assert (
            pipeline.metric(
                "shinchoku_alerts_notifications_total", kind="slipped", outcome="duplicate"
            )
            == 2
        )
        assert (
            pipeline.metric(
                "shinchoku_alerts_notifications_total", kind="slipped", outcome="delivered"
            )
            == 1
        )
        (attempt,) = await pipeline.commands.attempts(sub, limit=10, since=None, message_id=None)
        assert (attempt["result"], attempt["status_code"]) == ("success", 204)
        assert attempt["latency_ms"] > 0


async def test_escalation_and_recovery_are_separate_notifications(pipeline: Harness) -> None:
    """Within one episode an escalation to overdue is a new kind and is sent; a recovery goes
    only to the subscription that asked for recoveries."""
    async with webhook_receiver() as plain, webhook_receiver() as wants_recovery:
        await pipeline.subscribe(plain.url)
        await pipeline.subscribe(wants_recovery.url, kinds=["slipped", "overdue", "recovered"])
        await pipeline.change("kpi.b", S.ON_TRACK, S.OFF_TRACK)
        await pipeline.change("kpi.b", S.OFF_TRACK, S.OVERDUE)
        await pipeline.change("kpi.b", S.OVERDUE, S.ON_TRACK)
        await pipeline.worker.drain()
        assert sorted(payload(w)["type"] for w in plain.received) == ["kpi.overdue", "kpi.slipped"]
        types = sorted(payload(w)["type"] for w in wants_recovery.received)
        assert types == ["kpi.overdue", "kpi.recovered", "kpi.slipped"]


async def test_changes_within_the_window_go_out_as_one_delivery(
    mongo: MongoClient, mongo_config: MongoSettings
) -> None:
    """With a 30 s window, two slips 5 s apart wait for the window and then go out as one
    webhook listing both; a slip after the window goes out in a delivery of its own."""
    async with (
        alerts_harness(mongo, mongo_config.database, window_s=30) as h,
        webhook_receiver() as receiver,
    ):
        sub, secret = await h.subscribe(receiver.url)
        await h.change("kpi.c1", S.ON_TRACK, S.AT_RISK)
        h.clock.advance(seconds=5)
        await h.change("kpi.c2", S.AT_RISK, S.OFF_TRACK)
        h.clock.advance(seconds=20)
        assert await h.deliver() == 0
        h.clock.advance(seconds=6)
        assert await h.deliver() == 1
        (webhook,) = receiver.received
        body = payload(webhook)
        assert body["type"] == "kpi.slipped"
        assert body["data"]["kpi_id"] == "kpi.c2"  # off track is the more severe
        assert [c["kpi_id"] for c in body["data"]["changes"]] == ["kpi.c2", "kpi.c1"]
        assert body["data"]["count"] == 2

        h.clock.advance(seconds=10)
        await h.change("kpi.c3", S.ON_TRACK, S.STALE)
        h.clock.advance(seconds=31)
        assert await h.deliver() == 1
        assert [payload(w)["data"]["count"] for w in receiver.received] == [2, 1]
        ids = {w.headers["webhook-id"] for w in receiver.received}
        assert len(ids) == 2
        deliveries = await h.delivery_docs(sub)
        assert {d["state"] for d in deliveries} == {"delivered"}
        assert secret.startswith("whsec_")


async def test_a_silence_holds_a_notification_and_releases_it_when_it_ends(
    pipeline: Harness,
) -> None:
    """A slip for a silenced KPI is recorded as muted and sent when the silence ends."""
    async with webhook_receiver() as receiver:
        sub, _ = await pipeline.subscribe(receiver.url)
        now = pipeline.clock()
        await pipeline.silences.create_silence(
            scope=SilenceScope(kpis=["kpi.d"]),
            starts_at=None,
            ends_at=now + timedelta(hours=2),
            quiet_hours=None,
            reason="maintenance",
        )
        await pipeline.change("kpi.d", S.ON_TRACK, S.OFF_TRACK)
        await pipeline.change("kpi.other", S.ON_TRACK, S.OFF_TRACK)
        await pipeline.deliver()
        assert [payload(w)["data"]["kpi_id"] for w in receiver.received] == ["kpi.other"]
        (muted,) = await pipeline.commands.notifications(sub, state="muted", limit=10)
        assert muted["kpi_id"] == "kpi.d"
        assert abs(muted["muted_until"] - (now + timedelta(hours=2))) < timedelta(seconds=1)

        pipeline.clock.advance(hours=1)
        await pipeline.deliver()
        assert len(receiver.received) == 1
        pipeline.clock.advance(hours=1, seconds=1)
        await pipeline.deliver()
        assert [payload(w)["data"]["kpi_id"] for w in receiver.received] == ["kpi.other", "kpi.d"]
        assert (
            pipeline.metric(
                "shinchoku_alerts_notifications_total", kind="slipped", outcome="released"
            )
            == 1
        )


async def test_ending_a_silence_early_drops_what_is_no_longer_relevant(pipeline: Harness) -> None:
    """A slip muted by a silence is dropped, not sent, if the KPI recovered before the silence
    was ended; a muted slip whose KPI is still off track is sent."""
    async with webhook_receiver() as receiver:
        sub, _ = await pipeline.subscribe(receiver.url)
        silence = await pipeline.silences.create_silence(
            scope=SilenceScope(ministries=["mic"]),
            starts_at=None,
            ends_at=pipeline.clock() + timedelta(days=1),
            quiet_hours=None,
            reason=None,
        )
        await pipeline.change("kpi.e1", S.ON_TRACK, S.OFF_TRACK)
        await pipeline.change("kpi.e2", S.ON_TRACK, S.OFF_TRACK)
        await pipeline.change("kpi.e1", S.OFF_TRACK, S.ON_TRACK)
        await pipeline.deliver()
        assert receiver.received == []
        await pipeline.silences.end_silence(silence.silence.id)
        await pipeline.deliver()
        assert [payload(w)["data"]["kpi_id"] for w in receiver.received] == ["kpi.e2"]
        (dropped,) = await pipeline.commands.notifications(sub, state="dropped", limit=10)
        assert dropped["kpi_id"] == "kpi.e1"


async def test_quiet_hours_in_japan_time_hold_notifications(pipeline: Harness) -> None:
    """Quiet hours around the current Japan time mute a slip until their local end."""
    async with webhook_receiver() as receiver:
        sub, _ = await pipeline.subscribe(receiver.url)
        local = pipeline.clock().astimezone(JAPAN)
        start = (local - timedelta(hours=1)).time().replace(second=0, microsecond=0)
        end = (local + timedelta(hours=1)).time().replace(second=0, microsecond=0)
        await pipeline.silences.create_silence(
            scope=SilenceScope(subscription_id=sub),
            starts_at=None,
            ends_at=None,
            quiet_hours=QuietHours(start=start, end=end),
            reason="night",
        )
        await pipeline.change("kpi.f", S.ON_TRACK, S.AT_RISK)
        await pipeline.deliver()
        assert receiver.received == []
        (muted,) = await pipeline.commands.notifications(sub, state="muted", limit=10)
        until = muted["muted_until"].astimezone(JAPAN)
        assert (until.hour, until.minute) == (end.hour, end.minute)
        pipeline.clock.advance(hours=1, minutes=1)
        await pipeline.deliver()
        assert len(receiver.received) == 1


async def test_a_kpi_that_stays_off_track_is_reminded_after_the_interval(
    pipeline: Harness,
) -> None:
    """No reminder within 7 days; one after 7 days (a new webhook-id, reminder 1, the current
    status); none once the KPI has recovered."""
    async with webhook_receiver() as receiver:
        await pipeline.subscribe(receiver.url)
        await pipeline.change("kpi.g", S.ON_TRACK, S.AT_RISK)
        await pipeline.change("kpi.g", S.AT_RISK, S.OFF_TRACK)
        await pipeline.deliver()
        assert len(receiver.received) == 1
        pipeline.clock.advance(days=6)
        assert await pipeline.batcher.send_reminders() == 0
        pipeline.clock.advance(days=1, seconds=1)
        assert await pipeline.batcher.send_reminders() == 1
        await pipeline.deliver()
        first, reminder = (payload(w) for w in receiver.received)
        assert reminder["data"]["reminder"] == 1
        assert reminder["data"]["status"] == "off_track"
        assert first["data"]["reminder"] == 0
        ids = [w.headers["webhook-id"] for w in receiver.received]
        assert ids[0] != ids[1]
        await pipeline.change("kpi.g", S.OFF_TRACK, S.ON_TRACK)
        pipeline.clock.advance(days=8)
        assert await pipeline.batcher.send_reminders() == 0


async def test_retries_keep_the_webhook_id_and_honour_retry_after(pipeline: Harness) -> None:
    """A receiver failing twice with Retry-After: 60 is retried no sooner than 60 s later,
    with the same webhook-id, and the delivery log shows each attempt."""
    async with webhook_receiver() as receiver:
        sub, secret = await pipeline.subscribe(receiver.url)
        receiver.fail_next = 2
        receiver.retry_after = "60"
        await pipeline.change("kpi.h", S.ON_TRACK, S.OFF_TRACK)
        await pipeline.worker.drain()
        (delivery,) = await pipeline.delivery_docs(sub)
        assert delivery["state"] == "pending"
        assert delivery["next_attempt_at"] - delivery["last_attempt_at"] >= timedelta(seconds=59)
        assert await pipeline.worker.drain() == 0
        pipeline.clock.advance(seconds=61)
        await pipeline.worker.drain()
        pipeline.clock.advance(seconds=61)
        await pipeline.worker.drain()
        assert [w.status_code for w in receiver.attempts] == [503, 503, 204]
        assert len({w.headers["webhook-id"] for w in receiver.attempts}) == 1
        Webhook(secret).verify(receiver.received[0].body, receiver.received[0].headers)
        log = await pipeline.commands.attempts(sub, limit=10, since=None, message_id=None)
        assert [(a["attempt"], a["status_code"]) for a in log] == [(3, 204), (2, 503), (1, 503)]


async def test_exhausted_schedule_fails_and_failed_messages_can_be_redelivered(
    pipeline: Harness,
) -> None:
    """After the last scheduled retry a message is failed; redelivering failures in a time
    range sends it again with the same webhook-id; one message can be resent too."""
    async with webhook_receiver() as receiver:
        sub, _ = await pipeline.subscribe(receiver.url)
        receiver.failing = True
        since = pipeline.clock() - timedelta(seconds=1)
        await pipeline.change("kpi.i", S.ON_TRACK, S.OFF_TRACK)
        for _ in range(4):
            await pipeline.worker.drain()
            pipeline.clock.advance(seconds=3)
        (failed,) = await pipeline.commands.deliveries(
            sub, state="failed", since=None, until=None, limit=10
        )
        assert failed["attempts"] == 4
        receiver.failing = False
        queued = await pipeline.commands.redeliver_failed(sub, since=since, until=pipeline.clock())
        assert queued == 1
        await pipeline.worker.drain()
        assert [w.headers["webhook-id"] for w in receiver.received] == [failed["_id"]]
        await pipeline.commands.redeliver(sub, failed["_id"])
        await pipeline.worker.drain()
        assert [w.headers["webhook-id"] for w in receiver.received] == [failed["_id"]] * 2


async def test_gone_disables_the_endpoint_and_resume_sends_what_was_held(
    pipeline: Harness,
) -> None:
    """410 Gone disables the subscription at once with an operator event; while disabled
    nothing is sent; resuming it sends the held message."""
    async with webhook_receiver() as receiver:
        sub, _ = await pipeline.subscribe(receiver.url)
        receiver.fail_next = 1
        receiver.fail_status = 410
        await pipeline.change("kpi.j", S.ON_TRACK, S.OFF_TRACK)
        await pipeline.worker.drain()
        doc = await pipeline.commands.subscription(sub)
        assert doc.state == "disabled"
        assert "410" in (doc.state_reason or "")
        (event,) = await pipeline.commands.operator_events(limit=10, subscription_id=sub)
        assert event.kind == "endpoint_disabled"
        assert pipeline.metric("shinchoku_alerts_endpoints_disabled_total", reason="gone") == 1
        (held,) = await pipeline.commands.deliveries(
            sub, state="held", since=None, until=None, limit=10
        )
        await pipeline.commands.resume(sub)
        await pipeline.worker.drain()
        assert [w.headers["webhook-id"] for w in receiver.received] == [held["_id"]]


async def test_an_endpoint_failing_for_the_configured_period_is_disabled(
    mongo: MongoClient, mongo_config: MongoSettings
) -> None:
    """Failures spread over more than the disable period disable the endpoint, once, with
    one operator event; failures within the period do not."""
    async with (
        alerts_harness(
            mongo,
            mongo_config.database,
            schedule_s=(0, 3600, 3600, 3600),
            disable_after=timedelta(hours=2),
        ) as h,
        webhook_receiver() as receiver,
    ):
        sub, _ = await h.subscribe(receiver.url)
        receiver.failing = True
        await h.change("kpi.k", S.ON_TRACK, S.OFF_TRACK)
        await h.worker.drain()
        h.clock.advance(hours=1, seconds=1)
        await h.worker.drain()
        assert (await h.commands.subscription(sub)).state == "active"
        h.clock.advance(hours=1, seconds=1)
        await h.worker.drain()
        doc = await h.commands.subscription(sub)
        assert doc.state == "disabled"
        assert len(receiver.attempts) == 3
        events = await h.commands.operator_events(limit=10, subscription_id=sub)
        assert [e.kind for e in events] == ["endpoint_disabled"]


async def test_a_paused_subscription_gets_nothing_and_resumes(pipeline: Harness) -> None:
    """Paused: no new notifications and queued messages wait; resumed: they go out."""
    async with webhook_receiver() as receiver:
        sub, _ = await pipeline.subscribe(receiver.url, kpis=["kpi.l1", "kpi.l2"])
        receiver.fail_next = 1
        await pipeline.change("kpi.l1", S.ON_TRACK, S.OFF_TRACK)
        await pipeline.worker.drain()
        await pipeline.commands.pause(sub)
        await pipeline.change("kpi.l2", S.ON_TRACK, S.OFF_TRACK)
        pipeline.clock.advance(seconds=5)
        await pipeline.deliver()
        assert receiver.received == []
        (held,) = await pipeline.commands.deliveries(
            sub, state="held", since=None, until=None, limit=10
        )
        await pipeline.commands.resume(sub)
        await pipeline.deliver()
        assert [w.headers["webhook-id"] for w in receiver.received] == [held["_id"]]
        assert payload(receiver.received[0])["data"]["kpi_id"] == "kpi.l1"


async def test_two_workers_never_send_the_same_message(pipeline: Harness) -> None:
    """Two workers draining the same queue concurrently send each of 30 messages once."""
    async with webhook_receiver() as receiver:
        await pipeline.subscribe(receiver.url)
        for i in range(30):
            await pipeline.change(f"kpi.m{i}", S.ON_TRACK, S.OFF_TRACK)
        other = DeliveryWorker(
            stores=pipeline.stores,
            sender=pipeline.worker.sender,
            metrics=pipeline.worker.metrics,
            clock=pipeline.clock,
            schedule_s=(0, 1),
            lease=timedelta(seconds=30),
            disable_after=timedelta(days=1),
        )
        await asyncio.gather(pipeline.worker.drain(), other.drain())
        ids = [w.headers["webhook-id"] for w in receiver.attempts]
        assert len(ids) == 30
        assert len(set(ids)) == 30


async def test_a_slow_endpoint_does_not_delay_other_subscribers(pipeline: Harness) -> None:
    """While one subscriber's endpoint hangs, another subscriber's webhook is delivered."""
    async with webhook_receiver() as slow, webhook_receiver() as fast:
        slow.gate = asyncio.Event()
        await pipeline.subscribe(slow.url)
        await pipeline.subscribe(fast.url)
        await pipeline.change("kpi.n", S.ON_TRACK, S.OFF_TRACK)
        assert await pipeline.worker.fill() == 2
        await fast.wait_for(1, timeout_s=20)
        await asyncio.wait_for(slow.entered.wait(), timeout=20)  # reached, and held there
        assert slow.in_progress == 1
        assert slow.attempts == []
        assert len(fast.received) == 1
        slow.gate.set()
        await slow.wait_for(1, timeout_s=20)
        await pipeline.worker.drain()
        assert len(fast.received) == 1


async def test_dns_rebinding_is_refused_at_delivery_time(
    mongo: MongoClient, mongo_config: MongoSettings
) -> None:
    """A host that resolved to an allowed address at creation but to the metadata address at
    delivery is refused: nothing is sent, the attempt is logged as refused."""
    answers = {"hooks.example.test": ["127.0.0.1"]}

    async def resolver(host: str, port: int) -> list[str]:
        return answers.get(host) or await resolve(host, port)

    async with (
        alerts_harness(mongo, mongo_config.database, resolver=resolver) as h,
        webhook_receiver() as receiver,
    ):
        port = receiver.url.split(":")[2].split("/")[0]
        sub, _ = await h.subscribe(f"http://hooks.example.test:{port}/hook")
        answers["hooks.example.test"] = ["169.254.169.254"]
        await h.change("kpi.o", S.ON_TRACK, S.OFF_TRACK)
        await h.worker.drain()
        assert receiver.attempts == []
        (attempt,) = await h.commands.attempts(sub, limit=10, since=None, message_id=None)
        assert attempt["result"] == "refused"
        assert "metadata" in attempt["error"]
        answers["hooks.example.test"] = ["127.0.0.1"]
        h.clock.advance(seconds=1)
        await h.worker.drain()
        assert len(receiver.received) == 1


async def test_rotated_secret_and_previous_one_both_verify_during_the_overlap(
    pipeline: Harness,
) -> None:
    """After a rotation, webhooks carry both signatures; after the overlap only the new one."""
    async with webhook_receiver() as receiver:
        sub, old = await pipeline.subscribe(receiver.url)
        doc, new = await pipeline.commands.rotate_secret(sub, timedelta(minutes=2))
        assert len(doc.secrets) == 2
        await pipeline.change("kpi.p1", S.ON_TRACK, S.OFF_TRACK)
        await pipeline.worker.drain()
        webhook = receiver.received[0]
        Webhook(old).verify(webhook.body, webhook.headers)
        Webhook(new).verify(webhook.body, webhook.headers)
        pipeline.clock.advance(minutes=2, seconds=1)
        await pipeline.change("kpi.p2", S.ON_TRACK, S.OFF_TRACK)
        await pipeline.worker.drain()
        headers = receiver.received[1].headers
        assert len(headers["webhook-signature"].split(" ")) == 1


async def test_a_delivery_half_made_by_a_stopped_instance_is_finished(pipeline: Harness) -> None:
    """Notifications claimed into a delivery that was never written (the instance stopped in
    between) are delivered after the recovery delay."""
    async with webhook_receiver() as receiver:
        await pipeline.subscribe(receiver.url)
        pipeline.batcher.policy = replace(
            pipeline.batcher.policy, grouping_window=timedelta(hours=1)
        )
        pipeline.handler.policy = pipeline.batcher.policy
        await pipeline.change("kpi.q", S.ON_TRACK, S.OFF_TRACK)
        (waiting,) = await pipeline.stores.notifications.waiting()
        claimed = await pipeline.stores.notifications.claim(
            [waiting], "msg_orphan", pipeline.clock()
        )
        assert len(claimed) == 1
        assert await pipeline.deliver() == 0
        pipeline.clock.advance(seconds=31)
        await pipeline.deliver()
        assert [w.headers["webhook-id"] for w in receiver.received] == ["msg_orphan"]


async def test_a_change_redelivered_after_a_crash_is_sent_once(pipeline: Harness) -> None:
    """If the handler stopped after recording a notification but before its delivery was
    made, the redelivered change makes it (same webhook-id); replays after that send nothing."""
    async with webhook_receiver() as receiver:
        await pipeline.subscribe(receiver.url)
        event = await pipeline.change("kpi.r", S.ON_TRACK, S.OFF_TRACK)
        (message_id,) = [d["_id"] async for d in pipeline.db["alerts_queue"].find({})]
        # The crash: the message was never archived nor queued.
        await pipeline.db["alerts_queue"].delete_one({"_id": message_id})
        await pipeline.db["alerts_deliveries"].delete_one({"_id": message_id})
        await pipeline.replay(event)
        await pipeline.worker.drain()
        assert [w.headers["webhook-id"] for w in receiver.received] == [message_id]
        await pipeline.replay(event)
        assert await pipeline.deliver() == 0
        assert len(receiver.attempts) == 1

"""The alerts service killed (SIGKILL) with deliveries pending and once mid-attempt, while its
webhook receiver is down for a while and then back: every notification is delivered, every
webhook-id at least once, and no notification ever travels under two webhook-ids."""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from standardwebhooks.webhooks import Webhook

from harness.services import (
    RunningService,
    service_environment,
    start_service,
    stop_service,
    wait_ready,
)
from harness.stack import StackEndpoints, free_port
from harness.webhooks import ReceivedWebhook, WebhookReceiver, webhook_receiver
from shared.events.contracts import Status
from shared.kafka import create_producer, ensure_topics
from shared.mongo import MongoClient
from shared.settings import KafkaSettings, MongoSettings, TopicSettings
from tests.support.faults import eventually, status_change_record
from tests.support.stack import isolated_topics, random_suffix

pytestmark = pytest.mark.e2e

TOKEN = "alerts-kill-test"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
WAVE = 5  # KPIs slipping per wave


@pytest.fixture
async def setup(
    kafka: KafkaSettings, mongo: MongoClient, mongo_config: MongoSettings
) -> AsyncIterator[tuple[TopicSettings, str]]:
    topics = isolated_topics(f"akill{random_suffix()}")
    await ensure_topics(kafka, topics)
    database = f"{mongo_config.database}_akill"
    yield topics, database
    await mongo.drop_database(database)


class Alerts:
    """The alerts service as a process that can be killed and started again on its database."""

    def __init__(self, env: dict[str, str], log_dir: Path) -> None:
        self.env = env
        self.log_dir = log_dir
        self.port = free_port()
        self.service: RunningService | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        self.service = start_service("alerts", self.env, self.log_dir, port=self.port)
        await asyncio.to_thread(wait_ready, self.service)

    async def kill(self) -> None:
        assert self.service is not None
        await asyncio.to_thread(stop_service, self.service, kill=True)
        assert self.service.process.returncode == -9

    async def stop(self) -> None:
        if self.service is not None:
            await asyncio.to_thread(stop_service, self.service)


async def get_items(http: httpx.AsyncClient, url: str) -> list[dict[str, Any]]:
    answer = await http.get(url, headers=AUTH)
    assert answer.status_code == 200, answer.text
    items: list[dict[str, Any]] = answer.json()["items"]
    return items


def changes_of(webhook: ReceivedWebhook) -> list[dict[str, Any]]:
    changes: list[dict[str, Any]] = json.loads(webhook.body)["data"]["changes"]
    return changes


async def test_every_notification_is_delivered_under_one_webhook_id_across_kills(
    setup: tuple[TopicSettings, str],
    endpoints: StackEndpoints,
    kafka: KafkaSettings,
    tmp_path: Path,
) -> None:
    """Slips arrive in four waves: with the receiver up; with it down (connection refused) and
    the service then SIGKILLed with those deliveries pending after failed attempts; while the
    service is dead; and with the receiver back but holding requests, the service SIGKILLed
    with an attempt in flight. After the last restart every notification reaches the receiver;
    every webhook-id the receiver ever saw (or the delivery log lists) is received with success
    at least once, with one body that verifies; each notification travels under exactly one
    webhook-id; and every delivery ends `delivered`."""
    topics, database = setup
    env = service_environment(
        "alerts",
        endpoints=endpoints,
        topics=topics,
        database=database,
        admin_token=TOKEN,
        extra={
            # Groups of at most two: several deliveries per wave, some grouped.
            "SHINCHOKU_ALERTS_GROUPING_WINDOW_S": "1",
            "SHINCHOKU_ALERTS_MAX_CHANGES_PER_DELIVERY": "2",
            # Retry every second for long enough to outlast the receiver's downtime.
            "SHINCHOKU_ALERTS_RETRY_SCHEDULE_S": "[0" + ", 1" * 120 + "]",
            "SHINCHOKU_ALERTS_RETRY_JITTER": "0",
            "SHINCHOKU_ALERTS_LEASE_MARGIN_S": "2",  # a 4 s lease
            "SHINCHOKU_ALERTS_DELIVERY_TIMEOUT_S": "2",
            "SHINCHOKU_ALERTS_CLAIM_RECOVERY_S": "3",
        },
    )
    alerts = Alerts(env, tmp_path)
    measure = f"m.akill-{secrets.token_hex(3)}"
    kpis = [f"kpi.akill-{secrets.token_hex(3)}-{n}" for n in range(4 * WAVE)]
    waves = [kpis[i * WAVE : (i + 1) * WAVE] for i in range(4)]
    port = free_port()
    receiver = WebhookReceiver()
    producer = create_producer(kafka, client_suffix="alerts-kill-test")
    await producer.start()

    async def slip(wave: list[str]) -> None:
        for kpi_id in wave:
            record = status_change_record(
                kpi_id, seq=1, status=Status.OFF_TRACK, previous=Status.ON_TRACK, measure_id=measure
            )
            await producer.send_and_wait(
                topics.status, key=record.key, value=record.value, headers=record.headers
            )

    try:
        await alerts.start()
        async with httpx.AsyncClient(timeout=20) as http:
            deliveries_url = ""

            def received_kpis() -> set[str]:
                return {c["kpi_id"] for w in receiver.received for c in changes_of(w)}

            async def deliveries() -> list[dict[str, Any]]:
                return await get_items(http, f"{alerts.url}{deliveries_url}?limit=500")

            # Wave 1: the receiver is up.
            async with webhook_receiver(port=port, receiver=receiver):
                created = await http.post(
                    f"{alerts.url}/v1/subscriptions",
                    headers=AUTH,
                    json={"url": receiver.url, "filter": {"measures": [measure]}},
                )
                assert created.status_code == 201, created.text
                subscription, secret = created.json()["id"], created.json()["secret"]
                deliveries_url = f"/v1/subscriptions/{subscription}/deliveries"
                await slip(waves[0])

                async def wave_one_received() -> bool:
                    return received_kpis() >= set(waves[0])

                await eventually(wave_one_received, timeout_s=60, what="wave 1 delivered")

            # Wave 2: the receiver is down; killed with those deliveries pending after failures.
            await slip(waves[1])

            async def wave_two_failing() -> list[dict[str, Any]]:
                pending = [d for d in await deliveries() if set(d["kpi_ids"]) & set(waves[1])]
                covered = {k for d in pending for k in d["kpi_ids"]}
                failing = all(d["state"] == "pending" and d["attempts"] >= 2 for d in pending)
                return pending if covered >= set(waves[1]) and failing else []

            await eventually(wave_two_failing, timeout_s=60, what="wave 2 failing")
            await alerts.kill()

            # Wave 3: published while the service is dead.
            await slip(waves[2])
            await alerts.start()
            restarted_at = datetime.now(UTC)

            async def failed_again_after_restart() -> bool:
                attempts = await get_items(
                    http,
                    f"{alerts.url}/v1/subscriptions/{subscription}/attempts"
                    f"?since={restarted_at.isoformat().replace('+00:00', 'Z')}",
                )
                queued = {k for d in await deliveries() for k in d["kpi_ids"]}
                return queued >= set(waves[2]) and any(a["result"] != "success" for a in attempts)

            await eventually(
                failed_again_after_restart, timeout_s=60, what="failures after the restart"
            )

            # Wave 4: the receiver is back but holds requests; killed with attempts in flight.
            receiver.gate = asyncio.Event()
            receiver.entered.clear()
            async with webhook_receiver(port=port, receiver=receiver):
                await slip(waves[3])
                async with asyncio.timeout(60):
                    await receiver.entered.wait()
                await alerts.kill()
                in_flight_when_killed = receiver.in_progress
                receiver.gate.set()  # the receiver answers requests whose sender is gone
                receiver.gate = None
                await alerts.start()

                async def all_received() -> bool:
                    return received_kpis() >= set(kpis)

                await eventually(all_received, timeout_s=90, what="every KPI's slip received")

                async def all_delivered() -> list[dict[str, Any]]:
                    listed = await deliveries()
                    return listed if all(d["state"] == "delivered" for d in listed) else []

                listed = await eventually(
                    all_delivered, timeout_s=60, what="every delivery delivered"
                )
    finally:
        await producer.stop()
        await alerts.stop()

    print(
        "ALERTS-KILL attempts",
        len(receiver.attempts),
        "received",
        len(receiver.received),
        "webhook-ids",
        len({w.headers["webhook-id"] for w in receiver.received}),
        "in flight at kill",
        in_flight_when_killed,
        "deliveries",
        len(listed),
    )
    assert in_flight_when_killed >= 1
    # Every webhook-id seen, failing or not, and every listed delivery, was received with success.
    attempted_ids = {a.headers["webhook-id"] for a in receiver.attempts}
    received_ids = {w.headers["webhook-id"] for w in receiver.received}
    listed_ids = {d["id"] for d in listed}
    assert attempted_ids | listed_ids <= received_ids
    # One body per webhook-id, and it verifies.
    bodies: dict[str, set[bytes]] = {}
    for webhook in receiver.attempts:
        bodies.setdefault(webhook.headers["webhook-id"], set()).add(webhook.body)
    assert all(len(b) == 1 for b in bodies.values())
    verify: Callable[[bytes, dict[str, str]], Any] = Webhook(secret).verify
    for webhook in receiver.received:
        assert verify(webhook.body, webhook.headers)["data"]["subscription_id"] == subscription
    # The receiver's dedup: no notification under two webhook-ids; every KPI notified once.
    ids_per_notification: dict[str, set[str]] = {}
    for webhook in receiver.attempts:
        for change in changes_of(webhook):
            ids_per_notification.setdefault(change["notification_id"], set()).add(
                webhook.headers["webhook-id"]
            )
    assert {n: ids for n, ids in ids_per_notification.items() if len(ids) > 1} == {}
    notified = [
        c["kpi_id"]
        for w in {w.headers["webhook-id"]: w for w in receiver.received}.values()
        for c in changes_of(w)
    ]
    assert sorted(notified) == sorted(kpis)
    assert {n for d in listed for n in d["notification_ids"]} == set(ids_per_notification)

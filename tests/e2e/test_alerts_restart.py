"""The alerts service killed with a delivery pending delivers it after a restart."""

from __future__ import annotations

import asyncio
import secrets
from datetime import UTC, date, datetime
from pathlib import Path

import httpx
import pytest
from standardwebhooks.webhooks import Webhook

from harness.services import service_environment, start_service, stop_service, wait_ready
from harness.stack import StackEndpoints
from harness.webhooks import webhook_receiver
from shared.events.contracts import KpiStatusChanged, Status, new_status_event
from shared.events.kafka_binding import encode_structured
from shared.kafka import create_producer
from shared.mongo import MongoClient
from shared.settings import KafkaSettings, MongoSettings, TopicSettings

pytestmark = pytest.mark.e2e


async def publish_slip(kafka: KafkaSettings, topic: str, kpi_id: str) -> None:
    """A status change straight onto the status topic, as the kpi service writes it."""
    change = KpiStatusChanged(
        kpi_id=kpi_id,
        kind="kpi",
        measure_id="m.restart",
        ministries=["mic"],
        previous_status=Status.ON_TRACK,
        status=Status.OFF_TRACK,
        episode_id=f"{kpi_id}:{date.today().isoformat()}",
        evaluated_on=date.today(),
        explanation={"rule_id": "kpi.trajectory", "message": "restart test"},
    )
    event = new_status_event(change, event_id=f"status:{kpi_id}:1", time=datetime.now(UTC))
    record = encode_structured(event)
    producer = create_producer(kafka, client_suffix="restart-test")
    await producer.start()
    try:
        await producer.send_and_wait(
            topic, value=record.value, key=record.key, headers=record.headers
        )
    finally:
        await producer.stop()


async def test_a_pending_delivery_survives_a_kill(
    endpoints: StackEndpoints,
    topics: TopicSettings,
    kafka: KafkaSettings,
    mongo: MongoClient,
    mongo_config: MongoSettings,
    admin_token: str,
    tmp_path: Path,
) -> None:
    """Alerts is killed (SIGKILL) after a failed attempt; restarted, it delivers the message
    with the same webhook-id the receiver saw failing."""
    database = f"{mongo_config.database}_restart"
    env = service_environment(
        "alerts",
        endpoints=endpoints,
        topics=topics,
        database=database,
        admin_token=admin_token,
        extra={
            "SHINCHOKU_ALERTS_GROUPING_WINDOW_S": "0",
            "SHINCHOKU_ALERTS_RETRY_SCHEDULE_S": "[0" + ", 1" * 40 + "]",
            "SHINCHOKU_ALERTS_LEASE_MARGIN_S": "1",  # a 6 s lease (5 s deadline)
        },
    )
    kpi_id = f"kpi.restart-{secrets.token_hex(3)}"
    service = start_service("alerts", env, tmp_path)
    try:
        await asyncio.to_thread(wait_ready, service)
        async with webhook_receiver() as receiver, httpx.AsyncClient(timeout=20) as http:
            receiver.failing = True
            created = await http.post(
                f"{service.url}/v1/subscriptions",
                headers={"Authorization": f"Bearer {admin_token}"},
                json={"url": receiver.url, "filter": {"kpis": [kpi_id]}},
            )
            assert created.status_code == 201, created.text
            secret = created.json()["secret"]
            await publish_slip(kafka, topics.status, kpi_id)
            (failed, *_) = await receiver.wait_for_attempts(1, timeout_s=60)
            await asyncio.to_thread(stop_service, service, kill=True)
            assert service.process.returncode is not None
            attempts_before_restart = len(receiver.attempts)
            receiver.failing = False

            service = start_service("alerts", env, tmp_path)
            await asyncio.to_thread(wait_ready, service)
            (webhook,) = await receiver.wait_for(1, timeout_s=60)
            assert webhook.headers["webhook-id"] == failed.headers["webhook-id"]
            body = Webhook(secret).verify(webhook.body, webhook.headers)
            assert body["data"]["kpi_id"] == kpi_id
            assert len(receiver.attempts) == attempts_before_restart + 1
    finally:
        await asyncio.to_thread(stop_service, service)
        await mongo.drop_database(database)

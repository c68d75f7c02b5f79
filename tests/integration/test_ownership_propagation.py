"""An ownership change Kafka does not acknowledge (a private broker, hung with SIGSTOP): the
admin API answers 503 problem+json with Retry-After and the change id, the change is recorded
and in force at ingest, and once the broker is back ingest's periodic round publishes it, keyed
by the item, with the id derived from the change; then it is marked propagated."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from shared.catalogue.overrides import CHANGES
from shared.kafka import ensure_topics
from shared.mongo import MongoClient
from shared.settings import KafkaSettings, MongoSettings
from tests.support.faults import eventually
from tests.support.ingest import (
    ingest_in_process,
    ingest_settings,
    load_real_catalogue,
    records_with_ids,
)
from tests.support.kafka_broker import PrivateKafkaBroker
from tests.support.stack import isolated_topics

pytestmark = pytest.mark.integration

ADMIN_TOKEN = secrets.token_urlsafe(16)
ITEM = "kpi.5g-population-coverage"


@pytest.fixture
async def broker(tmp_path: Path) -> AsyncIterator[PrivateKafkaBroker]:
    private = PrivateKafkaBroker(tmp_path / "kafka")
    await asyncio.to_thread(private.start)
    try:
        yield private
    finally:
        await asyncio.to_thread(private.stop)


async def test_a_change_kafka_refused_is_answered_503_and_published_when_it_is_back(
    broker: PrivateKafkaBroker, mongo: MongoClient, mongo_config: MongoSettings, run_id: str
) -> None:
    database = f"{mongo_config.database}_ownpub_{secrets.token_hex(3)}"
    await load_real_catalogue(mongo, database)
    kafka = KafkaSettings(
        bootstrap_servers=broker.bootstrap_servers,
        client_id="shinchoku-ownership-test",
        request_timeout_ms=2_000,
        delivery_timeout_s=3.0,
    )
    topics = isolated_topics(f"{run_id}p{secrets.token_hex(2)}", partitions=3)
    await ensure_topics(kafka, topics)
    settings = ingest_settings(
        kafka,
        topics,
        mongo_config.model_copy(update={"database": database}),
        SHINCHOKU_ADMIN_TOKEN=ADMIN_TOKEN,
        ownership_publish_interval_s=0.5,
    )
    try:
        async with ingest_in_process(settings) as ingest:
            broker.pause()
            try:
                answer = await ingest.http.put(
                    f"/v1/admin/items/{ITEM}/owners",
                    headers={"authorization": f"Bearer {ADMIN_TOKEN}"},
                    json={"owners": ["mic", "digital"], "reason": "outage test", "changed_by": "t"},
                )
            finally:
                broker.resume()
            assert answer.status_code == 503, answer.text
            assert answer.headers["content-type"].startswith("application/problem+json")
            assert int(answer.headers["retry-after"]) >= 1
            problem = answer.json()
            assert problem["type"].endswith("/kafka-unavailable")
            assert problem["code"] == "ownership_not_propagated"
            change_id = problem["change_id"]

            # Recorded and in force at ingest all the same.
            view = await ingest.http.get(
                f"/v1/admin/items/{ITEM}/ownership",
                headers={"authorization": f"Bearer {ADMIN_TOKEN}"},
            )
            assert view.json()["owners"] == ["mic", "digital"]

            async def propagated() -> bool:
                doc = await mongo[database][CHANGES].find_one({"item_id": ITEM})
                return doc is not None and doc.get("propagated_at") is not None

            await eventually(propagated, timeout_s=60, what="the change marked propagated")

        event_id = f"owners:{change_id}"
        found = await records_with_ids(broker.bootstrap_servers, topics.events, [event_id], 60)
        assert event_id in found, "the change is not on the events topic"
        # Published again after a failed attempt, it is the same record (kpi applies it once).
        for seen in found[event_id]:
            assert seen.key == ITEM.encode()
            assert seen.event["source"] == "/services/ingest"
            assert seen.event["data"]["owners"] == ["mic", "digital"]
            assert seen.event["data"]["change_id"] == change_id
    finally:
        await mongo.drop_database(database)

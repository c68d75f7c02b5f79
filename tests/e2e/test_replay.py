"""`shinchoku replay` rebuilds the KPI state from the events topic and finds it equal to live."""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest

from harness.services import RunningService, service_database, upsert_catalogue_item
from services.kpi.replay import replay
from services.kpi.settings import KpiSettings
from shared.events.contracts import KpiObservedEvent
from shared.events.kafka_binding import encode_structured
from shared.kafka import create_producer
from shared.mongo import MongoClient
from shared.settings import KafkaSettings, MongoSettings, TopicSettings
from tests.support.topics import TopicTail, status_changes

pytestmark = pytest.mark.e2e


async def test_replay_of_the_events_topic_matches_the_live_state(
    system: dict[str, RunningService],
    mongo: MongoClient,
    mongo_config: MongoSettings,
    kafka: KafkaSettings,
    topics: TopicSettings,
    ministry_headers: Callable[[str], Awaitable[dict[str, str]]],
) -> None:
    """Observations arriving out of order, a duplicate, and a record the kpi service rejects are
    all in the topic; replaying it into a fresh database gives every subject the same folded
    state and the same status as the live service, and the replay database is dropped."""
    kpi_id = f"kpi.replay-{secrets.token_hex(3)}"
    await upsert_catalogue_item(
        mongo,
        mongo_config.database,
        {
            "_id": kpi_id,
            "id": kpi_id,
            "kind": "kpi",
            "measure_id": "m.replay",
            "unit": "件",
            "direction": "increase",
            "ministries": ["mic"],
            "state": "active",
            "baseline": {"value": 0.0, "as_of": "2022-03-31"},
            "targets": [{"value": 1000.0, "deadline": "2031-03-31", "deadline_text": "2030年度末"}],
        },
    )
    today = date.today()
    auth = await ministry_headers("mic")
    values = [(500.0, 20), (450.0, 40), (520.0, 10), (480.0, 30)]  # deliberately out of as_of order
    async with (
        httpx.AsyncClient(timeout=20) as http,
        TopicTail(kafka.bootstrap_servers, topics.status) as tail,
    ):
        events: list[dict[str, Any]] = []
        for value, days_back in values:
            events.append(
                {
                    "specversion": "1.0",
                    "id": secrets.token_hex(8),
                    "source": "/ministries/mic",
                    "type": "shinchoku.kpi.observed.v1",
                    "subject": kpi_id,
                    "time": datetime.now(UTC).isoformat(),
                    "data": {
                        "kpi_id": kpi_id,
                        "value": value,
                        "as_of": (today - timedelta(days=days_back)).isoformat(),
                    },
                }
            )
        for event in events:
            answer = await http.post(
                f"{system['ingest'].url}/v1/events",
                content=json.dumps(event),
                headers={"content-type": "application/cloudevents+json", **auth},
            )
            assert answer.status_code == 202, answer.text
        # What a ministry writing straight to Kafka might add: a resent event and an event
        # about a KPI the catalogue does not know (the kpi service dead-letters it).
        stray = {
            **events[0],
            "id": secrets.token_hex(8),
            "subject": "kpi.unknown",
            "data": {**events[0]["data"], "kpi_id": "kpi.unknown"},
        }
        producer = create_producer(kafka, client_suffix="test-direct")
        await producer.start()
        try:
            for event in (events[0], stray):
                record = encode_structured(KpiObservedEvent.model_validate(event))
                await producer.send_and_wait(
                    topics.events, value=record.value, key=record.key, headers=record.headers
                )
        finally:
            await producer.stop()
        await tail.wait_for(lambda s: bool(status_changes(s, kpi_id)))
        # Processing of the last observations may trail the first status change: poll (bounded)
        # until the API shows all four.
        for _ in range(150):
            body = (await http.get(f"{system['kpi'].url}/v1/kpis/{kpi_id}")).json()
            if len(body["observations"]) == len(values):
                break
            await asyncio.sleep(0.2)
        assert len(body["observations"]) == len(values)

    kpi_database = service_database(mongo_config.database, "kpi")
    settings = KpiSettings(
        kafka=kafka,
        topics=topics,
        mongo=mongo_config.model_copy(update={"database": kpi_database}),
        consumer_group="unused-by-replay",
    )
    report = await replay(settings)
    assert report.mismatches == []
    assert report.matches
    assert report.subjects_replayed >= 1
    assert report.events_read >= len(values) + 2
    # (listDatabases is very slow on FerretDB with many databases: look at the one in question)
    assert await mongo[report.replay_database].list_collection_names() == []

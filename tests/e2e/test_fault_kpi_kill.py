"""The kpi service killed (SIGKILL) in the middle of 20,000 events and restarted ends in the
same state as a clean run over the same events: nothing lost, nothing counted twice."""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient

from harness.services import (
    RunningService,
    service_environment,
    start_service,
    stop_service,
    wait_ready,
)
from harness.stack import StackEndpoints
from services.kpi.adapters.repository import OBSERVATIONS, KpiRepository
from shared.catalogue_store import CatalogueStore
from shared.events.contracts import KpiObservedEvent
from shared.events.kafka_binding import encode_structured
from shared.kafka import client_options, ensure_topics
from shared.mongo import MongoClient
from shared.settings import KafkaSettings, TopicSettings

pytestmark = pytest.mark.e2e

KPIS = 100
EVENTS = 20_000
RESENT = 500  # events sent a second time, same source and id (a ministry retrying)
TODAY = datetime.now(UTC).date()
# Per KPI, how fast its values rise against the planned ~8 points a year: on track, behind,
# far behind, ahead.
PACES = (1.0, 0.7, 0.3, 1.4)


def catalogue_kpi(index: int) -> dict[str, Any]:
    kpi_id = f"kpi.kill-test-{index:03d}"
    return {
        "_id": kpi_id,
        "id": kpi_id,
        "kind": "kpi",
        "measure_id": f"m.kill-test-{index % 10}",
        "unit": "%",
        "direction": "increase",
        "accumulation": "level",
        "ministries": ["digital"],
        "state": "active",
        "baseline": {"value": 10.0, "as_of": "2021-03-31"},
        "targets": [{"value": 90.0, "deadline": "2031-03-31", "deadline_text": "2030年度末"}],
    }


def observations() -> list[KpiObservedEvent]:
    """EVENTS observations, round-robin over the KPIs, weekly as_of dates ending this week,
    arriving in a shuffled order (late and out of order), then RESENT of them again."""
    rounds = EVENTS // KPIS
    start = TODAY - timedelta(weeks=rounds)
    events = []
    for n in range(EVENTS):
        index, round_ = n % KPIS, n // KPIS
        as_of = start + timedelta(weeks=round_ + 1)
        years = (as_of - date(2021, 3, 31)).days / 365
        value = round(10 + 8 * years * PACES[index % len(PACES)], 2)
        kpi_id = f"kpi.kill-test-{index:03d}"
        events.append(
            KpiObservedEvent.model_validate(
                {
                    "specversion": "1.0",
                    "id": f"kill-{n:05d}",
                    "source": "/ministries/digital",
                    "type": KpiObservedEvent.TYPE,
                    "subject": kpi_id,
                    "time": datetime.now(UTC),
                    "partitionkey": kpi_id,
                    "data": {"kpi_id": kpi_id, "value": value, "as_of": as_of},
                }
            )
        )
    shuffled = events[:]
    secrets.SystemRandom().shuffle(shuffled)
    return shuffled + shuffled[:RESENT]


async def produce(kafka: KafkaSettings, topic: str, events: list[KpiObservedEvent]) -> None:
    producer = AIOKafkaProducer(**client_options(kafka), acks="all", enable_idempotence=True)
    await producer.start()
    try:
        futures = []
        for event in events:
            record = encode_structured(event)
            futures.append(
                await producer.send(
                    topic, value=record.value, key=record.key, headers=record.headers
                )
            )
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def committed(admin: AIOKafkaAdminClient, group: str, topic: str) -> int:
    offsets = await admin.list_consumer_group_offsets(group)
    return sum(meta.offset for tp, meta in offsets.items() if tp.topic == topic and meta.offset > 0)


async def wait_committed(
    admin: AIOKafkaAdminClient, group: str, topic: str, at_least: int, timeout_s: float
) -> int:
    """Polls the group's committed offsets until at least `at_least` (bounded)."""
    async with asyncio.timeout(timeout_s):
        while True:
            count = await committed(admin, group, topic)
            if count >= at_least:
                return count
            await asyncio.sleep(0.05)


async def read_topic(kafka: KafkaSettings, topic: str) -> list[dict[str, Any]]:
    consumer = AIOKafkaConsumer(
        topic,
        **client_options(kafka),
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        partitions = consumer.assignment()
        end = await consumer.end_offsets(list(partitions))
        values: list[dict[str, Any]] = []
        async with asyncio.timeout(60):
            while [tp for tp in partitions if await consumer.position(tp) < end[tp]]:
                for records in (await consumer.getmany(timeout_ms=500)).values():
                    values.extend(json.loads(r.value) for r in records)
        return values
    finally:
        await consumer.stop()


@pytest.fixture
async def admin(kafka: KafkaSettings) -> AsyncIterator[AIOKafkaAdminClient]:
    client = AIOKafkaAdminClient(**client_options(kafka))
    await client.start()
    yield client
    await client.close()


async def test_a_kpi_service_killed_mid_stream_ends_where_a_clean_run_ends(
    endpoints: StackEndpoints,
    kafka: KafkaSettings,
    mongo: MongoClient,
    admin: AIOKafkaAdminClient,
    admin_token: str,
    tmp_path: Path,
) -> None:
    """Two kpi services read the same 20,500 records (500 resent) into their own databases;
    one is SIGKILLed mid-stream and restarted. Both end with 20,000 observations and the same
    state and status for every KPI, and the killed one published each status change id with
    one content and no gaps in any KPI's sequence."""
    run = secrets.token_hex(3)
    events_topic = f"test.kill.{run}.events"
    runs = {
        name: TopicSettings(
            events=events_topic,
            status=f"test.kill.{run}.{name}.status",
            dead_letter=f"test.kill.{run}.{name}.dlq",
            partitions=6,
        )
        for name in ("clean", "killed")
    }
    for topics in runs.values():
        await ensure_topics(kafka, topics)
    databases = {name: f"test_kill_{run}_{name}" for name in runs}
    for database in databases.values():
        store = CatalogueStore(mongo, database)
        for index in range(KPIS):
            await store.upsert_item(catalogue_kpi(index))
    records = observations()
    await produce(kafka, events_topic, records)

    envs = {
        name: service_environment(
            "kpi",
            endpoints=endpoints,
            topics=runs[name],
            database=databases[name],
            admin_token=admin_token,
            extra={"SHINCHOKU_KPI_SWEEP_INTERVAL_S": "3600", "SHINCHOKU_KPI_LOG_LEVEL": "WARNING"},
        )
        for name in runs
    }
    groups = {name: envs[name]["SHINCHOKU_KPI_CONSUMER_GROUP"] for name in runs}
    services: dict[str, RunningService] = {}
    try:
        for name in runs:
            services[name] = start_service("kpi", envs[name], tmp_path)
        for service in services.values():
            wait_ready(service)
        at_kill = await wait_committed(
            admin, groups["killed"], events_topic, len(records) // 5, timeout_s=300
        )
        services["killed"].process.kill()
        services["killed"].process.wait(timeout=10)
        assert at_kill < len(records), "the run finished before it could be killed"
        services["killed"] = start_service("kpi", envs["killed"], tmp_path)
        wait_ready(services["killed"])
        for name in runs:
            await wait_committed(admin, groups[name], events_topic, len(records), timeout_s=300)
    finally:
        for service in services.values():
            stop_service(service)

    try:
        states = {
            name: await KpiRepository(mongo[db]).all_states() for name, db in databases.items()
        }
        for name, database in databases.items():
            assert await mongo[database][OBSERVATIONS].count_documents({}) == EVENTS, name
        assert set(states["clean"]) == set(states["killed"])
        assert len(states["clean"]) == KPIS
        for subject, clean in states["clean"].items():
            killed = states["killed"][subject]
            assert killed["aggregate"] == clean["aggregate"], subject
            assert killed["status"] == clean["status"], subject
            assert killed["evaluation"] == clean["evaluation"], subject
        statuses = {doc["status"] for doc in states["clean"].values()}
        assert len(statuses) >= 2, f"the feed should yield several statuses, got {statuses}"

        published = await read_topic(kafka, runs["killed"].status)
        by_id: dict[str, list[dict[str, Any]]] = {}
        for event in published:
            by_id.setdefault(event["id"], []).append(event)
        for copies in by_id.values():
            assert all(copy == copies[0] for copy in copies[1:]), copies[0]["id"]
        seqs: dict[str, list[int]] = {}
        for event_id in by_id:
            _, subject, seq = event_id.rsplit(":", 2)
            seqs.setdefault(subject, []).append(int(seq))
        for subject, state in states["killed"].items():
            assert sorted(seqs.get(subject, [])) == list(range(1, state["seq"] + 1)), subject
            last = by_id[f"status:{subject}:{state['seq']}"][0]
            assert last["data"]["status"] == state["status"], subject
    finally:
        for database in databases.values():
            await mongo.drop_database(database)

"""FerretDB stopped and restarted while the kpi service (a process) consumes a stream of
observations: it pauses, commits no offset past what it stored, and resumes without loss; its
final KPI states equal those of a second kpi service that consumed the same topic untroubled."""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer

from harness.services import (
    RunningService,
    service_environment,
    start_service,
    stop_service,
    wait_ready,
)
from harness.stack import StackEndpoints
from services.kpi.adapters.repository import KpiRepository
from shared.events.kafka_binding import STRUCTURED_CONTENT_TYPE
from shared.kafka import create_producer, ensure_topics
from shared.mongo import MongoClient, create_mongo_client
from shared.settings import KafkaSettings, MongoSettings
from tests.support.faults import committed_offsets, eventually
from tests.support.ferretdb import PrivateFerretDB
from tests.support.ingest import load_real_catalogue
from tests.support.stack import isolated_topics, kafka_client_options, random_suffix

pytestmark = pytest.mark.e2e

# Real catalogue KPIs in percent, owned by mic.
KPIS = (
    "kpi.5g-population-coverage",
    "kpi.5g-population-coverage-per-prefecture",
    "kpi.5g-infrastructure-deployment-rate",
    "kpi.mynumber-card-coverage",
    "kpi.local-online-procedures-mynaportal",
    "kpi.moving-oss-municipalities",
    "kpi.5g-municipalities-covered",
    "kpi.fibre-household-coverage",
)
EVENTS = 640  # 80 per KPI, under the kpi API's 1,000 observations per answer
RESENT = 40  # records sent a second time, same id


def observation_stream(seed: int) -> list[dict[str, Any]]:
    """Observations of the KPIs over the past 18 months, several revisions of some dates."""
    rng = random.Random(seed)
    today = date.today()
    events = []
    for n in range(EVENTS):
        kpi_id = KPIS[n % len(KPIS)]
        events.append(
            {
                "specversion": "1.0",
                "id": f"fdb-{seed}-{n}",
                "source": "/ministries/mic",
                "type": "shinchoku.kpi.observed.v1",
                "subject": kpi_id,
                "time": (datetime.now(UTC) - timedelta(seconds=EVENTS - n)).isoformat(),
                "partitionkey": kpi_id,
                "data": {
                    "kpi_id": kpi_id,
                    "value": round(rng.uniform(40.0, 100.0), 1),
                    "as_of": (today - timedelta(days=7 * rng.randrange(0, 78))).isoformat(),
                },
            }
        )
    resent = rng.sample(events, RESENT)
    stream = [*events]
    for event in resent:
        stream.insert(rng.randrange(events.index(event) + 1, len(stream) + 1), event)
    return stream


@dataclass
class Kpi:
    service: RunningService
    database: str

    def retries_logged(self) -> int:
        return self.service.log_path.read_text(errors="replace").count("handler_failed_retrying")


@pytest.fixture
async def private_database(tmp_path: Path) -> AsyncIterator[PrivateFerretDB]:
    database = PrivateFerretDB(tmp_path / "ferretdb")
    await asyncio.to_thread(database.start)
    try:
        yield database
    finally:
        await asyncio.to_thread(database.remove)


async def read_offsets(
    bootstrap_servers: str, topic: str, count: int
) -> list[tuple[int, int, str]]:
    """(partition, offset, event id) of the first `count` records of `topic`."""
    consumer = AIOKafkaConsumer(
        topic,
        **kafka_client_options(bootstrap_servers),
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    found: list[tuple[int, int, str]] = []
    await consumer.start()
    try:
        async with asyncio.timeout(30):
            while len(found) < count:
                for tp, records in (await consumer.getmany(timeout_ms=300)).items():
                    found.extend(
                        (tp.partition, r.offset, json.loads(r.value)["id"]) for r in records
                    )
    finally:
        await consumer.stop()
    return found


async def kpi_view(http: httpx.AsyncClient, kpi: Kpi, kpi_id: str) -> dict[str, Any]:
    answer = await http.get(f"{kpi.service.url}/v1/kpis/{kpi_id}")
    assert answer.status_code == 200, answer.text
    view: dict[str, Any] = answer.json()
    return view


async def test_kpi_pauses_on_a_database_outage_commits_nothing_unstored_and_resumes(
    private_database: PrivateFerretDB,
    endpoints: StackEndpoints,
    kafka: KafkaSettings,
    mongo: MongoClient,
    mongo_config: MongoSettings,
    tmp_path: Path,
) -> None:
    """While a stream of observations (with resent duplicates) is consumed, the kpi service's
    FerretDB stops: the service retries without crashing and its group's committed offsets do
    not move; every record below them was stored before the outage (read from the restarted
    database while the service is paused); after the restart every observation is stored
    exactly once and each KPI's status and evaluation equal those of an untroubled kpi
    service that consumed the same topic into another database."""
    topics = isolated_topics(f"fdb{random_suffix()}")
    await ensure_topics(kafka, topics)
    live_db, reference_db = "kpi_fault_live", f"{mongo_config.database}_fdb_reference"
    private = create_mongo_client(
        MongoSettings(url=private_database.url, database=live_db), app_name="fault-test"
    )
    await load_real_catalogue(private, live_db)
    await load_real_catalogue(mongo, reference_db)

    def kpi_environment(database: str, url: str) -> dict[str, str]:
        return service_environment(
            "kpi",
            endpoints=endpoints,
            topics=topics,
            database=database,
            admin_token="fdb-test",
            extra={"SHINCHOKU_KPI_MONGO__URL": url},
        )

    live = Kpi(
        start_service("kpi", kpi_environment(live_db, private_database.url), tmp_path), live_db
    )
    reference = Kpi(
        start_service("kpi", kpi_environment(reference_db, endpoints.mongo), tmp_path), reference_db
    )
    live_group = f"kpi-{live_db}"
    stream = observation_stream(random.randrange(1 << 30))
    producer = create_producer(kafka, client_suffix="fdb-test")
    headers = [("content-type", STRUCTURED_CONTENT_TYPE.encode())]

    async def produce(events: list[dict[str, Any]]) -> None:
        for start in range(0, len(events), 20):
            for event in events[start : start + 20]:
                await producer.send(
                    topics.events,
                    key=event["partitionkey"].encode(),
                    value=json.dumps(event).encode(),
                    headers=headers,
                )
            await producer.flush()
            await asyncio.sleep(0.02)  # a stream, not one burst

    async def committed() -> dict[int, int]:
        return await committed_offsets(
            kafka.bootstrap_servers, live_group, topics.events, topics.partitions
        )

    try:
        await asyncio.gather(
            asyncio.to_thread(wait_ready, live.service),
            asyncio.to_thread(wait_ready, reference.service),
        )
        await producer.start()
        half = len(stream) // 2
        stream_task = asyncio.create_task(produce(stream[:half]))

        # Mid-stream, once the live service has committed a good part, its database stops.
        async def consumed_some() -> bool:
            return sum(max(o, 0) for o in (await committed()).values()) >= len(stream) // 4

        await eventually(consumed_some, timeout_s=60, what="a quarter of the stream committed")
        await asyncio.to_thread(private_database.stop)
        retries_at_stop = live.retries_logged()
        await stream_task
        await produce(stream[half:])  # the rest of the stream arrives during the outage

        async def retrying() -> bool:
            return live.retries_logged() >= retries_at_stop + 1

        await eventually(retrying, timeout_s=30, what="the kpi handler retrying")
        during = await committed()

        async def retried_more() -> bool:
            return live.retries_logged() >= retries_at_stop + 3

        await eventually(retried_more, timeout_s=45, what="more retries while down")
        after = await committed()
        assert after == during, "offsets were committed while nothing could be stored"
        assert live.service.process.poll() is None, "the kpi service must not crash"
        ends = await read_offsets(kafka.bootstrap_servers, topics.events, len(stream))
        assert sum(1 for p, o, _ in ends if o >= max(after[p], 0)) > 0, "records wait unstored"

        # What was stored, read while the service is paused, covers every committed record.
        os.kill(live.service.process.pid, signal.SIGSTOP)
        try:
            await asyncio.to_thread(private_database.start)
            repository = KpiRepository(private[live_db])
            stored_before = {
                event.event_id
                for kpi_id in KPIS
                for event in await repository.history(kpi_id, limit=10_000)
            }
        finally:
            os.kill(live.service.process.pid, signal.SIGCONT)
        committed_ids = {event_id for p, o, event_id in ends if o < max(after[p], 0)}
        assert committed_ids, "something was committed before the outage"
        assert committed_ids <= stored_before, (
            f"{len(committed_ids - stored_before)} records committed but not stored"
        )

        # Resumed: every observation stored once, and the same states as the reference.
        expected = {event["id"] for event in stream}
        async with httpx.AsyncClient(timeout=30) as http:

            async def everything_stored(kpi: Kpi) -> dict[str, dict[str, Any]]:
                views = {k: await kpi_view(http, kpi, k) for k in KPIS}
                ids = [o["event_id"] for view in views.values() for o in view["observations"]]
                return views if set(ids) == expected else {}

            live_views = await eventually(
                lambda: everything_stored(live), timeout_s=90, every_s=1, what="live caught up"
            )
            reference_views = await eventually(
                lambda: everything_stored(reference), timeout_s=60, every_s=1, what="reference"
            )
        for kpi_id in KPIS:
            live_view, reference_view = live_views[kpi_id], reference_views[kpi_id]
            ids = [o["event_id"] for o in live_view["observations"]]
            assert len(ids) == len(set(ids)), f"{kpi_id}: an observation stored twice"
            assert sorted(ids) == sorted(o["event_id"] for o in reference_view["observations"])
            assert live_view["status"] == reference_view["status"], kpi_id
            assert live_view["evaluation"] == reference_view["evaluation"], kpi_id
        final = await committed()
        assert all(final[p] >= after[p] for p in final)
        assert live.service.process.poll() is None
    finally:
        await producer.stop()
        for kpi in (live, reference):
            await asyncio.to_thread(stop_service, kpi.service)
        await private.close()
        await mongo.drop_database(reference_db)

"""Reads of a KPI's history are bounded, in-process against the real FerretDB and Kafka: at most
`max_concurrent_history_reads` at once (429 problem+json with Retry-After beyond), at most the
configured number of observations listed and folded (the answer says when it was cut), and
the consumer keeps storing events while such reads keep running."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import AsyncIterator
from datetime import date, timedelta

import httpx
import pytest
from aiokafka import AIOKafkaProducer
from fastapi import FastAPI

from services.kpi.adapters.repository import KpiRepository
from services.kpi.bootstrap import create_app
from services.kpi.ports import ReceivedEvent
from services.kpi.service.intake import received_event
from services.kpi.settings import KpiSettings
from shared.catalogue_store import CatalogueStore
from shared.events.contracts import KpiObservedEvent
from shared.events.kafka_binding import encode_structured
from shared.kafka import create_producer, ensure_topics
from shared.mongo import MongoClient
from shared.settings import KafkaSettings, MongoSettings
from tests.integration.test_kpi_storage import observed, synthetic_kpi
from tests.support.faults import eventually
from tests.support.stack import isolated_topics

pytestmark = pytest.mark.integration

PROBLEM_JSON = "application/problem+json"
LONG = "kpi.reads-long"
SHORT = "kpi.reads-short"
FRESH = "kpi.reads-fresh"
LIMIT = 2
SHOWN = 3
FOLDED = 4
LONG_HISTORY = 2000


def stored(event: KpiObservedEvent) -> ReceivedEvent:
    """An observation as the consumer stores it."""
    assert event.time is not None
    return received_event(event, event.time)


@pytest.fixture(scope="module")
async def service(
    mongo: MongoClient, mongo_config: MongoSettings, kafka: KafkaSettings, run_id: str
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient, KpiSettings]]:
    """The kpi app (consumer running) over a private database and topics, with a KPI of a long
    history (stored directly) and one of a short one."""
    database = f"{mongo_config.database}_reads_{secrets.token_hex(3)}"
    topics = isolated_topics(f"{run_id}-reads")
    async with asyncio.timeout(60):
        await ensure_topics(kafka, topics)
    store = CatalogueStore(mongo, database)
    for kpi_id in (LONG, SHORT, FRESH):
        await store.upsert_item(synthetic_kpi(kpi_id))
    start = date(2021, 4, 1)
    repository = KpiRepository(mongo[database])
    await repository.store_events(
        [
            stored(observed(LONG, 10.0 + n / 100, start + timedelta(days=n)))
            for n in range(LONG_HISTORY)
        ]
    )
    await repository.store_events(
        [stored(observed(SHORT, 20.0, start + timedelta(days=30 * n))) for n in range(2)]
    )
    settings = KpiSettings(
        kafka=kafka,
        topics=topics,
        mongo=MongoSettings(url=mongo_config.url, database=database),
        consumer_group=f"test-reads-{run_id}",
        sweep_interval_s=3600.0,
        max_concurrent_history_reads=LIMIT,
        history_read_retry_after_s=7,
        observations_shown=SHOWN,
        as_of_events_limit=FOLDED,
    )
    app = create_app(settings)
    try:
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://kpi", timeout=60
            ) as http,
        ):
            yield app, http, settings
    finally:
        await mongo.drop_database(database)


async def test_history_reads_beyond_the_limit_are_answered_429_with_retry_after(
    service: tuple[FastAPI, httpx.AsyncClient, KpiSettings],
) -> None:
    """With every history-read slot taken, GET /v1/kpis/{id} (with and without as_of) is
    answered 429 problem+json with the configured Retry-After; a slot freed, it is answered."""
    app, http, _ = service
    reads = app.state.history_reads.reads
    async with contextlib.AsyncExitStack() as held:
        for _ in range(LIMIT):
            await held.enter_async_context(reads.slot())
        for params in ({}, {"as_of": "2022-01-01"}):
            answer = await http.get(f"/v1/kpis/{SHORT}", params=params)
            assert answer.status_code == 429, answer.text
            assert answer.headers["content-type"] == PROBLEM_JSON
            assert answer.headers["retry-after"] == "7"
            problem = answer.json()
            assert problem["status"] == 429
            assert problem["type"].endswith("too-many-requests")
            assert "try again in 7 s" in problem["detail"]
    assert reads.in_use == 0
    assert (await http.get(f"/v1/kpis/{SHORT}")).status_code == 200


async def test_history_reads_return_at_most_the_cap_and_say_so(
    service: tuple[FastAPI, httpx.AsyncClient, KpiSettings],
) -> None:
    """A long history lists only the latest `observations_shown` and an as_of evaluation folds
    only the latest `as_of_events_limit` up to the date, each flagged; a short one is whole."""
    _, http, _ = service
    latest = await http.get(f"/v1/kpis/{LONG}")
    assert latest.status_code == 200, latest.text
    body = latest.json()
    assert len(body["observations"]) == SHOWN
    assert body["observations_truncated"] is True
    assert body["history_truncated"] is False
    newest = date(2021, 4, 1) + timedelta(days=LONG_HISTORY - 1)
    assert body["observations"][-1]["as_of"] == newest.isoformat()

    on = date(2022, 4, 1)
    past = await http.get(f"/v1/kpis/{LONG}", params={"as_of": on.isoformat()})
    assert past.status_code == 200, past.text
    body = past.json()
    assert body["history_truncated"] is True
    assert body["observations_truncated"] is True
    assert [o["as_of"] for o in body["observations"]] == [
        (on - timedelta(days=d)).isoformat() for d in (2, 1, 0)
    ]
    assert body["evaluation"] is not None

    short = (await http.get(f"/v1/kpis/{SHORT}", params={"as_of": "2022-01-01"})).json()
    assert (short["observations_truncated"], short["history_truncated"]) == (False, False)
    assert len(short["observations"]) == 2


async def test_a_history_read_over_its_time_bound_is_stopped_and_answered_503(
    service: tuple[FastAPI, httpx.AsyncClient, KpiSettings],
) -> None:
    """With a 1 ms bound on what one read may cost the database (maxTimeMS), the database stops
    the scan of a long history and the answer is 503 problem+json with Retry-After; with the
    configured bound the same read is answered."""
    app, http, _ = service
    queries = app.state.kpi_queries
    configured = queries.max_time_ms
    queries.max_time_ms = 1
    try:
        for params in ({}, {"as_of": "2024-01-01"}):
            answer = await http.get(f"/v1/kpis/{LONG}", params=params)
            assert answer.status_code == 503, answer.text
            assert answer.headers["content-type"] == PROBLEM_JSON
            assert answer.headers["retry-after"] == "7"
            assert "took longer than 1 ms" in answer.json()["detail"]
    finally:
        queries.max_time_ms = configured
    assert (await http.get(f"/v1/kpis/{LONG}", params={"as_of": "2024-01-01"})).status_code == 200


async def test_events_are_consumed_while_expensive_reads_keep_running(
    service: tuple[FastAPI, httpx.AsyncClient, KpiSettings],
    kafka: KafkaSettings,
) -> None:
    """Readers hammering as_of reads of a long history (more of them than the limit, each
    asking again as soon as answered) do not stop the consumer: an event produced meanwhile
    is stored (bounded wait), and the reads were answered throughout (200 or 429)."""
    app, http, settings = service
    answers: list[int] = []
    stop = asyncio.Event()

    async def reader(n: int) -> None:
        while not stop.is_set():
            on = date(2023, 1, 1) + timedelta(days=n)
            answer = await http.get(f"/v1/kpis/{LONG}", params={"as_of": on.isoformat()})
            answers.append(answer.status_code)
            if answer.status_code == 429:
                await asyncio.sleep(0.05)  # a client's backoff, shorter than it is told

    readers = [asyncio.create_task(reader(n)) for n in range(3 * LIMIT)]
    producer: AIOKafkaProducer = create_producer(kafka, client_suffix="reads-test")
    await producer.start()
    try:
        await eventually(
            lambda: asyncio.sleep(0, result=app.state.history_reads.reads.in_use == LIMIT),
            timeout_s=30,
            every_s=0.01,
            what="every read slot busy",
        )
        event = observed(FRESH, 42.0, date(2025, 5, 1))
        encoded = encode_structured(event)
        await producer.send_and_wait(
            settings.topics.events,
            key=encoded.key,
            value=encoded.value,
            headers=encoded.headers,
        )
        repository = KpiRepository(app.state.catalogue.database)

        async def fresh_stored() -> bool:
            stored = await repository.history(FRESH, limit=5)
            return any(e.event_id == event.id for e in stored)

        await eventually(fresh_stored, timeout_s=90, what="the event stored during the reads")
        assert not any(r.done() for r in readers)  # the reads were still going on
    finally:
        stop.set()
        outcomes = await asyncio.gather(*readers, return_exceptions=True)
        await producer.stop()
    assert outcomes == [None] * len(readers)
    assert set(answers) <= {200, 429}
    assert 200 in answers
    assert 429 in answers

"""Kafka stopped mid-request: no 202 for an event that did not reach Kafka, 503 with Retry-After
instead, and service again once the broker is back. Runs on a private broker (the shared one is
never stopped)."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from shared.kafka import ensure_topics
from shared.mongo import MongoClient
from shared.settings import KafkaSettings, MongoSettings
from tests.support.ingest import (
    STRUCTURED,
    InProcessIngest,
    bearer,
    body,
    create_key,
    ingest_in_process,
    ingest_settings,
    kpi_event,
    load_real_catalogue,
    records_with_ids,
)
from tests.support.kafka_broker import PrivateKafkaBroker
from tests.support.stack import isolated_topics

pytestmark = pytest.mark.integration

DELIVERY_TIMEOUT_S = 3.0


@pytest.fixture(scope="module")
async def database(mongo: MongoClient, mongo_config: MongoSettings) -> AsyncIterator[str]:
    name = f"{mongo_config.database}_ingout_{secrets.token_hex(3)}"
    await load_real_catalogue(mongo, name)
    yield name
    await mongo.drop_database(name)


@pytest.fixture
async def broker(tmp_path: Path) -> AsyncIterator[PrivateKafkaBroker]:
    private = PrivateKafkaBroker(tmp_path / "kafka")
    await asyncio.to_thread(private.start)
    try:
        yield private
    finally:
        await asyncio.to_thread(private.stop)


class Traffic:
    """Concurrent senders of fresh events; every answer is recorded with its event id."""

    def __init__(self, ingest: InProcessIngest, key: str) -> None:
        self.ingest = ingest
        self.key = key
        self.answers: list[tuple[str, httpx.Response]] = []
        self._stop = asyncio.Event()
        self._answered = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    async def _sender(self) -> None:
        while not self._stop.is_set():
            event = kpi_event(90.0)
            answer = await self.ingest.http.post(
                "/v1/events", content=body(event), headers={**STRUCTURED, **bearer(self.key)}
            )
            self.answers.append((event["id"], answer))
            self._answered.set()

    def start(self, senders: int = 4) -> None:
        self._tasks = [asyncio.create_task(self._sender()) for _ in range(senders)]

    async def stop(self) -> None:
        self._stop.set()
        await asyncio.gather(*self._tasks)

    def with_status(self, status: int) -> list[tuple[str, httpx.Response]]:
        return [(i, a) for i, a in self.answers if a.status_code == status]

    async def until(self, condition: Callable[[], bool], timeout_s: float) -> None:
        async with asyncio.timeout(timeout_s):
            while not condition():
                self._answered.clear()
                await self._answered.wait()


async def accepted_again(ingest: InProcessIngest, key: str, timeout_s: float) -> dict[str, Any]:
    """Bounded polling: a fresh event answers 202 once the producer has reconnected."""
    deadline = time.monotonic() + timeout_s
    last = None
    while time.monotonic() < deadline:
        event = kpi_event(91.0)
        last = await ingest.http.post(
            "/v1/events", content=body(event), headers={**STRUCTURED, **bearer(key)}
        )
        if last.status_code == 202:
            return event
        assert last.status_code == 503, last.text
        await asyncio.sleep(0.5)
    raise AssertionError(f"not accepted again within {timeout_s}s: {last and last.text}")


def assert_unavailable(answer: httpx.Response) -> None:
    assert answer.headers["content-type"].startswith("application/problem+json")
    problem = answer.json()
    assert problem["type"].endswith("/kafka-unavailable")
    assert int(answer.headers["retry-after"]) >= 1


async def test_broker_stopped_mid_request_never_gets_a_202_for_a_lost_event(
    broker: PrivateKafkaBroker,
    mongo: MongoClient,
    mongo_config: MongoSettings,
    database: str,
    run_id: str,
) -> None:
    """With events in flight, the broker hangs (SIGSTOP) and later dies (SIGKILL): requests it
    did not acknowledge answer 503 with Retry-After, every event answered 202 is on the topic
    after the restart, a refused event is accepted when resent, and new events are accepted."""
    kafka = KafkaSettings(
        bootstrap_servers=broker.bootstrap_servers,
        client_id="shinchoku-outage-test",
        request_timeout_ms=2_000,
        delivery_timeout_s=DELIVERY_TIMEOUT_S,
    )
    topics = isolated_topics(f"{run_id}o{secrets.token_hex(2)}", partitions=3)
    await ensure_topics(kafka, topics)
    key = await create_key(mongo, database)
    settings = ingest_settings(
        kafka,
        topics,
        mongo_config.model_copy(update={"database": database}),
        rate_limit={"events_per_s": 100_000, "burst": 100_000},
    )
    async with ingest_in_process(settings) as ingest:
        traffic = Traffic(ingest, key)
        traffic.start()
        await traffic.until(lambda: len(traffic.with_status(202)) >= 20, 60)

        # 1. The broker hangs with requests in flight: they time out into 503s.
        broker.pause()
        paused_at = len(traffic.answers)
        await traffic.until(lambda: len(traffic.with_status(503)) >= 4, 60)
        broker.resume()
        await traffic.until(lambda: len(traffic.answers) > paused_at + 8, 60)
        await traffic.until(lambda: traffic.answers[-1][1].status_code == 202, 60)

        # 2. The broker dies with requests in flight.
        accepted_before_kill = len(traffic.with_status(202))
        broker.kill()
        await traffic.until(lambda: len(traffic.with_status(503)) >= 10, 60)
        await traffic.stop()
        assert len(traffic.with_status(202)) >= accepted_before_kill

        statuses = {answer.status_code for _, answer in traffic.answers}
        assert statuses <= {202, 503}, statuses
        for _, answer in traffic.with_status(503):
            assert_unavailable(answer)

        await asyncio.to_thread(broker.start)
        fresh = await accepted_again(ingest, key, timeout_s=60)

        # A refused event, resent, is accepted (its claim was released, not left pending).
        refused_id, _ = traffic.with_status(503)[-1]
        resent = kpi_event(90.0, event_id=refused_id)
        again = await ingest.http.post(
            "/v1/events", content=body(resent), headers={**STRUCTURED, **bearer(key)}
        )
        assert again.status_code == 202, again.text

    accepted = [event_id for event_id, _ in traffic.with_status(202)]
    found = await records_with_ids(
        broker.bootstrap_servers, topics.events, [*accepted, fresh["id"], refused_id], 60
    )
    print(
        "COUNTS", len(accepted), len(traffic.with_status(503)), sum(len(v) for v in found.values())
    )
    missing = set(accepted) - set(found)
    assert not missing, f"{len(missing)} events answered 202 are not on the topic"
    assert fresh["id"] in found
    assert refused_id in found

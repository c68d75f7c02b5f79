"""The Kafka broker stopped and restarted while ingest is under load, with ingest and kpi running
as processes on a private broker: every event answered 202 reaches the events topic and is
stored by the kpi service exactly once in effect; every other answer is a 503 problem with
Retry-After; a client resending those gets them accepted once the broker is back."""

from __future__ import annotations

import asyncio
import json
import random
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from harness.services import running_services, service_environment
from harness.stack import StackEndpoints
from shared.kafka import ensure_topics
from shared.mongo import MongoClient
from shared.settings import KafkaSettings, MongoSettings
from tests.support.faults import eventually
from tests.support.ingest import create_key, load_real_catalogue, records_with_ids
from tests.support.kafka_broker import PrivateKafkaBroker
from tests.support.stack import isolated_topics, random_suffix

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
STRUCTURED = {"content-type": "application/cloudevents+json"}
BATCH = {"content-type": "application/cloudevents-batch+json"}
BATCH_SIZE = 8


def new_event(rng: random.Random) -> dict[str, Any]:
    kpi_id = rng.choice(KPIS)
    return {
        "specversion": "1.0",
        "id": f"kout-{secrets.token_hex(8)}",
        "source": "/ministries/mic",
        "type": "shinchoku.kpi.observed.v1",
        "subject": kpi_id,
        "time": datetime.now(UTC).isoformat(),
        "data": {
            "kpi_id": kpi_id,
            "value": round(rng.uniform(40.0, 100.0), 1),
            "as_of": (date.today() - timedelta(days=rng.randrange(0, 500))).isoformat(),
        },
    }


@dataclass
class Outcomes:
    """Per event id: the statuses it was answered with, in order; and the refusals' problems."""

    events: dict[str, dict[str, Any]] = field(default_factory=dict)
    answers: dict[str, list[int]] = field(default_factory=dict)
    # (problem, Retry-After header) of every refused request; (problem, None) per refused event
    # inside a batch answer.
    problems: list[tuple[dict[str, Any], str | None]] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def record(self, event: dict[str, Any], status: int) -> None:
        self.events[event["id"]] = event
        self.answers.setdefault(event["id"], []).append(status)
        self.changed.set()

    def count(self, status: int) -> int:
        return sum(answers.count(status) for answers in self.answers.values())

    def with_last(self, status: int) -> list[str]:
        return [i for i, answers in self.answers.items() if answers[-1] == status]

    async def until(self, condition: Any, timeout_s: float, what: str) -> None:
        try:
            async with asyncio.timeout(timeout_s):
                while not condition():
                    self.changed.clear()
                    await self.changed.wait()
        except TimeoutError:
            summary = {s: self.count(s) for s in (200, 202, 503)}
            raise AssertionError(f"not within {timeout_s}s: {what} ({summary})") from None


class Load:
    """Concurrent clients posting fresh events, single and in batches, recording every answer."""

    def __init__(self, http: httpx.AsyncClient, url: str, key: str, outcomes: Outcomes) -> None:
        self.http, self.url, self.outcomes = http, url, outcomes
        self.auth = {"authorization": f"Bearer {key}"}
        self.rng = random.Random(secrets.randbits(32))
        self.stopping = asyncio.Event()
        self.tasks: list[asyncio.Task[None]] = []

    def refused(self, answer: httpx.Response) -> None:
        assert answer.headers["content-type"].startswith("application/problem+json")
        assert "retry-after" in answer.headers, answer.text
        self.outcomes.problems.append((answer.json(), answer.headers["retry-after"]))

    async def single(self) -> None:
        while not self.stopping.is_set():
            event = new_event(self.rng)
            answer = await self.http.post(
                f"{self.url}/v1/events",
                content=json.dumps(event),
                headers={**STRUCTURED, **self.auth},
            )
            if answer.status_code != 202:
                self.refused(answer)
            self.outcomes.record(event, answer.status_code)

    async def batches(self) -> None:
        while not self.stopping.is_set():
            events = [new_event(self.rng) for _ in range(BATCH_SIZE)]
            answer = await self.http.post(
                f"{self.url}/v1/events:batch",
                content=json.dumps(events),
                headers={**BATCH, **self.auth},
            )
            if answer.status_code != 200:
                self.refused(answer)
            results = answer.json()["results"]
            assert [r["id"] for r in results] == [e["id"] for e in events], answer.text
            for event, result in zip(events, results, strict=True):
                if result["status"] != 202:
                    self.outcomes.problems.append((result["problem"], None))
                self.outcomes.record(event, result["status"])

    def start(self, singles: int = 3, batches: int = 1) -> None:
        self.tasks = [asyncio.create_task(self.single()) for _ in range(singles)]
        self.tasks += [asyncio.create_task(self.batches()) for _ in range(batches)]

    async def stop(self) -> None:
        self.stopping.set()
        await asyncio.gather(*self.tasks)


@pytest.fixture
async def broker_and_database(
    tmp_path: Path, mongo: MongoClient, mongo_config: MongoSettings
) -> AsyncIterator[tuple[PrivateKafkaBroker, str]]:
    """A private broker (started while the catalogue loads) and a database with the catalogue."""
    broker = PrivateKafkaBroker(tmp_path / "kafka")
    database = f"{mongo_config.database}_kout"
    try:
        await asyncio.gather(asyncio.to_thread(broker.start), load_real_catalogue(mongo, database))
        yield broker, database
    finally:
        await asyncio.to_thread(broker.kill)  # throw-away data: no clean shutdown needed
        await mongo.drop_database(database)


async def test_events_answered_202_across_a_broker_restart_are_stored_once(
    broker_and_database: tuple[PrivateKafkaBroker, str],
    endpoints: StackEndpoints,
    mongo: MongoClient,
    tmp_path: Path,
) -> None:
    """Four clients post events (single and batched) while the broker is stopped and started
    again: every answer is 202 or a 503 kafka-unavailable problem with Retry-After; ingest
    accepts again after the restart under the same load; the clients resend every refused event
    with its id and get it accepted; then every event is on the events topic and the kpi
    service has stored each event exactly once (duplicates on the topic, from producer retries
    or resends, are dropped by id), and both services are ready again."""
    broker, database = broker_and_database
    kafka = KafkaSettings(bootstrap_servers=broker.bootstrap_servers, client_id="kout-test")
    topics = isolated_topics(f"kout{random_suffix()}")
    await ensure_topics(kafka, topics)
    key = await create_key(mongo, database, "mic")
    private = StackEndpoints(kafka=broker.bootstrap_servers, mongo=endpoints.mongo)
    extra = {
        "SHINCHOKU_INGEST_KAFKA__DELIVERY_TIMEOUT_S": "3",
        "SHINCHOKU_INGEST_KAFKA__REQUEST_TIMEOUT_MS": "2000",
        "SHINCHOKU_INGEST_RATE_LIMIT__EVENTS_PER_S": "100000",
        "SHINCHOKU_INGEST_RATE_LIMIT__BURST": "100000",
        "SHINCHOKU_INGEST_UNAVAILABLE_RETRY_AFTER_S": "2",
    }
    envs = {
        name: service_environment(
            name,
            endpoints=private,
            topics=topics,
            database=database,
            admin_token="kout-test",
            extra=extra,
        )
        for name in ("ingest", "kpi")
    }
    outcomes = Outcomes()

    with running_services(envs, tmp_path) as services:
        ingest, kpi = services["ingest"], services["kpi"]
        async with httpx.AsyncClient(timeout=30) as http:
            load = Load(http, ingest.url, key, outcomes)
            load.start()
            try:
                await outcomes.until(lambda: outcomes.count(202) >= 30, 60, "accepted before")

                await asyncio.to_thread(broker.stop)
                await outcomes.until(lambda: outcomes.count(503) >= 12, 60, "refused while down")
                accepted_before_restart = outcomes.count(202)

                await asyncio.to_thread(broker.start)
                await outcomes.until(
                    lambda: outcomes.count(202) >= accepted_before_restart + 30,
                    90,
                    "accepted again under load after the restart",
                )
            finally:
                await load.stop()

            statuses = {s for answers in outcomes.answers.values() for s in answers}
            assert statuses <= {202, 503}, statuses
            for problem, retry_after in outcomes.problems:
                assert problem["status"] == 503, problem
                assert problem["type"].endswith("/kafka-unavailable"), problem
                assert retry_after is None or int(retry_after) >= 1
            refused = outcomes.with_last(503)
            accepted = outcomes.with_last(202)
            assert refused, "the outage refused events"

            # A well-behaved client resends what was refused, with the same ids, in batches.
            async def resend_until_accepted(events: list[dict[str, Any]]) -> list[int]:
                async def resend() -> list[int]:
                    answer = await http.post(
                        f"{ingest.url}/v1/events:batch",
                        content=json.dumps(events),
                        headers={**BATCH, **load.auth},
                    )
                    if answer.status_code != 200:
                        return []
                    results = [r["status"] for r in answer.json()["results"]]
                    for event, status in zip(events, results, strict=True):
                        outcomes.record(event, status)
                    return results

                return await eventually(resend, timeout_s=30, what="resent batch answered")

            chunks = [refused[i : i + 20] for i in range(0, len(refused), 20)]
            resent = await asyncio.gather(
                *(resend_until_accepted([outcomes.events[i] for i in c]) for c in chunks)
            )
            # 202, never 200: a refused event had not been accepted, so it is no duplicate.
            assert {status for statuses in resent for status in statuses} == {202}

            everything = set(outcomes.events)
            on_topic = await records_with_ids(
                broker.bootstrap_servers, topics.events, everything, timeout_s=60
            )
            assert set(accepted) <= on_topic.keys(), "an event answered 202 is not on the topic"
            assert everything == on_topic.keys()

            async def stored_by_kpi() -> dict[str, list[str]]:
                stored: dict[str, list[str]] = {}
                for kpi_id in KPIS:
                    answer = await http.get(f"{kpi.url}/v1/kpis/{kpi_id}")
                    assert answer.status_code == 200, answer.text
                    stored[kpi_id] = [
                        o["event_id"]
                        for o in answer.json()["observations"]
                        if o["event_id"].startswith("kout-")
                    ]
                ids = {i for ids in stored.values() for i in ids}
                return stored if ids >= everything else {}

            stored = await eventually(
                stored_by_kpi, timeout_s=90, every_s=1, what="every event stored by kpi"
            )
            for kpi_id, ids in stored.items():
                assert len(ids) == len(set(ids)), f"{kpi_id}: an event stored twice"
                assert all(outcomes.events[i]["data"]["kpi_id"] == kpi_id for i in ids)
            assert {i for ids in stored.values() for i in ids} == everything
            copies = sum(len(records) for records in on_topic.values())
            print(
                f"KAFKA-OUTAGE events {len(everything)} refused-then-resent {len(refused)} "
                f"records on topic {copies}"
            )
            for service in (ingest, kpi):
                ready = await http.get(f"{service.url}/readyz")
                assert ready.status_code == 200, (service.name, ready.text)

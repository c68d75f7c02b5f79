"""Helpers for the ingest tests: a database with the real catalogue, API keys, the app in-process,
event builders and a reader of what reached Kafka. Nothing here fakes Kafka or MongoDB."""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer
from fastapi import FastAPI

from services.ingest.adapters.keys import ApiKeyStore
from services.ingest.bootstrap import create_app
from services.ingest.settings import IngestSettings
from shared.catalogue.loader import load_into, validated_catalogue
from shared.mongo import MongoClient
from shared.settings import KafkaSettings, MongoSettings, TopicSettings
from tests.support.stack import kafka_client_options

STRUCTURED = {"content-type": "application/cloudevents+json"}
BATCH = {"content-type": "application/cloudevents-batch+json"}
# Real catalogue entries (shared/catalogue/plan-2022.yaml) the tests report on.
PERCENT_KPI = "kpi.mynumber-card-coverage"  # unit %, owned by digital (with mic)
MILESTONE = "ms.dfft-g7-2023-outcomes"  # owned by digital
MEASURE = "m.4-1-3.digital-inclusion-support"  # owned by digital
OWNER = "digital"
# The admin token of the ingest the `ingest` fixture runs.
ADMIN_TOKEN = secrets.token_urlsafe(16)
# Limits small enough to reach in a test, and a rate limit that never gets in the way: a test
# module sets `INGEST_SETTINGS = SMALL_LIMITS` for the `ingest` fixture to use them.
SMALL_LIMITS: dict[str, Any] = {
    "rate_limit": {"events_per_s": 100_000, "burst": 100_000},
    "limits": {"max_event_bytes": 16 * 1024, "max_batch_events": 20, "max_batch_bytes": 64 * 1024},
}


async def load_real_catalogue(mongo: MongoClient, database: str) -> None:
    """The plan catalogue, as `shinchoku catalogue load` writes it, into `database`."""
    catalogue = validated_catalogue(check_sources=False)
    await load_into(mongo[database], catalogue, now=datetime.now(UTC))


async def create_key(mongo: MongoClient, database: str, ministry: str = OWNER) -> str:
    full, _ = await ApiKeyStore(mongo, database).create(ministry, datetime.now(UTC), "tests")
    return full


def bearer(key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"}


def ingest_settings(
    kafka: KafkaSettings, topics: TopicSettings, mongo: MongoSettings, **overrides: Any
) -> IngestSettings:
    values: dict[str, Any] = {
        "kafka": kafka,
        "topics": topics,
        "mongo": mongo,
        "log_json": True,
        **overrides,
    }
    return IngestSettings.model_validate(values)


@dataclass
class InProcessIngest:
    app: FastAPI
    http: httpx.AsyncClient


@asynccontextmanager
async def ingest_in_process(settings: IngestSettings) -> AsyncIterator[InProcessIngest]:
    """The ingest app with its lifespan running, reached through httpx's ASGI transport."""
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://ingest", timeout=60
        ) as http:
            yield InProcessIngest(app, http)


def _module_label(request: pytest.FixtureRequest) -> str:
    return str(request.module.__name__).rsplit(".", 1)[-1].removeprefix("test_")[:16]


# The two fixtures below are the ingest integration tests' (registered in
# tests/integration/conftest.py): one database with the real catalogue and one ingest running
# in-process on it, per test module.


@pytest.fixture(scope="module")
async def catalogue_database(
    mongo: MongoClient, mongo_config: MongoSettings, request: pytest.FixtureRequest
) -> AsyncIterator[str]:
    """A database of the test module's own, with the real catalogue loaded."""
    name = f"{mongo_config.database}_{_module_label(request)}_{secrets.token_hex(3)}"
    await load_real_catalogue(mongo, name)
    yield name
    await mongo.drop_database(name)


@pytest.fixture(scope="module")
async def ingest(
    kafka: KafkaSettings,
    topics: TopicSettings,
    mongo_config: MongoSettings,
    catalogue_database: str,
    request: pytest.FixtureRequest,
) -> AsyncIterator[InProcessIngest]:
    """Ingest in-process on `catalogue_database`, with `ADMIN_TOKEN` and the module's
    `INGEST_SETTINGS` (a dict of settings, if it has one)."""
    settings = ingest_settings(
        kafka,
        topics,
        mongo_config.model_copy(update={"database": catalogue_database}),
        SHINCHOKU_ADMIN_TOKEN=ADMIN_TOKEN,
        **getattr(request.module, "INGEST_SETTINGS", {}),
    )
    async with ingest_in_process(settings) as running:
        yield running


def new_id() -> str:
    return secrets.token_hex(8)


def kpi_event(
    value: float = 96.6,
    *,
    kpi_id: str = PERCENT_KPI,
    ministry: str = OWNER,
    as_of: date | None = None,
    event_id: str | None = None,
    **attributes: Any,
) -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "id": event_id or new_id(),
        "source": f"/ministries/{ministry}",
        "type": "shinchoku.kpi.observed.v1",
        "subject": kpi_id,
        "time": datetime.now(UTC).isoformat(),
        "datacontenttype": "application/json",
        "data": {
            "kpi_id": kpi_id,
            "value": value,
            "as_of": (as_of or date.today()).isoformat(),
            "note": "integration test",
        },
        **attributes,
    }


def milestone_event(*, ministry: str = OWNER, state: str = "in_progress") -> dict[str, Any]:
    today = date.today().isoformat()
    return {
        "specversion": "1.0",
        "id": new_id(),
        "source": f"/ministries/{ministry}",
        "type": "shinchoku.milestone.reported.v1",
        "subject": MILESTONE,
        "time": datetime.now(UTC).isoformat(),
        "data": {
            "milestone_id": MILESTONE,
            "state": state,
            "percent_complete": 40,
            "expected_completion": "2030-03-31",
            "as_of": today,
            "note": None,
        },
    }


def measure_event(*, ministry: str = OWNER, rating: str = "at_risk") -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "id": new_id(),
        "source": f"/ministries/{ministry}",
        "type": "shinchoku.measure.assessed.v1",
        "subject": MEASURE,
        "time": datetime.now(UTC).isoformat(),
        "data": {
            "measure_id": MEASURE,
            "rating": rating,
            "as_of": date.today().isoformat(),
            "narrative": "integration test",
        },
    }


def body(event: dict[str, Any] | list[dict[str, Any]]) -> bytes:
    return json.dumps(event).encode()


@dataclass(frozen=True)
class SeenRecord:
    key: bytes | None
    headers: dict[str, bytes]
    event: dict[str, Any]
    partition: int


async def records_with_ids(
    bootstrap_servers: str, topic: str, ids: Iterable[str], timeout_s: float = 60.0
) -> dict[str, list[SeenRecord]]:
    """Every record on `topic` (from the beginning, up to its end when every id was seen) whose
    event id is in `ids`; waits until each id was seen at least once or the timeout passed (then
    returns what it found)."""
    wanted = set(ids)
    found: dict[str, list[SeenRecord]] = {}
    consumer = AIOKafkaConsumer(
        topic,
        **kafka_client_options(bootstrap_servers),
        enable_auto_commit=False,
        group_id=None,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    try:
        async with asyncio.timeout(timeout_s):
            while True:
                batch = await consumer.getmany(timeout_ms=300)
                for tp, records in batch.items():
                    for r in records:
                        event = json.loads(r.value)
                        if event.get("id") in wanted:
                            found.setdefault(event["id"], []).append(
                                SeenRecord(r.key, dict(r.headers), event, tp.partition)
                            )
                partitions = list(consumer.assignment())
                if partitions and wanted <= found.keys():
                    end = await consumer.end_offsets(partitions)
                    positions = [await consumer.position(tp) for tp in partitions]
                    if all(pos >= end[tp] for pos, tp in zip(positions, partitions, strict=True)):
                        return found
    except TimeoutError:
        return found
    finally:
        await consumer.stop()

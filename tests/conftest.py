"""Fixtures shared by the integration and e2e tiers. Unit tests use none of them."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from harness.stack import StackEndpoints, kafka_settings
from shared.kafka import ensure_topics
from shared.mongo import MongoClient, create_mongo_client, mongo_reachable
from shared.settings import KafkaSettings, MongoSettings, TopicSettings
from tests.support.stack import isolated_topics, mongo_settings, random_suffix


@pytest.fixture(scope="session")
def endpoints() -> StackEndpoints:
    return StackEndpoints()


@pytest.fixture(scope="session")
def run_id() -> str:
    return random_suffix()


@pytest.fixture(scope="session")
def kafka(endpoints: StackEndpoints) -> KafkaSettings:
    return kafka_settings(endpoints)


@pytest.fixture(scope="session")
def mongo_config(endpoints: StackEndpoints, run_id: str) -> MongoSettings:
    return mongo_settings(endpoints, run_id)


@pytest.fixture(scope="session")
async def topics(kafka: KafkaSettings, run_id: str) -> TopicSettings:
    """This session's own topics, created with explicit partitions on the real broker."""
    settings = isolated_topics(run_id)
    async with asyncio.timeout(60):
        await ensure_topics(kafka, settings)
    return settings


@pytest.fixture(scope="session")
async def mongo(mongo_config: MongoSettings) -> AsyncIterator[MongoClient]:
    client = create_mongo_client(mongo_config, app_name="shinchoku-tests")
    if not await mongo_reachable(client, 10.0):
        pytest.fail(f"MongoDB (FerretDB) is not reachable at {mongo_config.url}: run `make test`")
    yield client
    # With the databases of the services e2e tests run on it (harness/services.py).
    for suffix in ("", "_ingest", "_kpi", "_alerts"):
        await client.drop_database(f"{mongo_config.database}{suffix}")
    await client.close()

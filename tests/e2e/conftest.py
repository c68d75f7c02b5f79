from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from harness.services import (
    SERVICES,
    RunningService,
    running_services,
    service_database,
    service_environment,
)
from harness.stack import StackEndpoints
from services.ingest.adapters.keys import ApiKeyStore
from shared.mongo import MongoClient
from shared.settings import MongoSettings, TopicSettings


@pytest.fixture(scope="session")
def admin_token() -> str:
    return secrets.token_urlsafe(16)


@pytest.fixture(scope="session")
def system(
    endpoints: StackEndpoints,
    topics: TopicSettings,
    mongo_config: MongoSettings,
    mongo: MongoClient,
    admin_token: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[dict[str, RunningService]]:
    """The three services as real processes on this session's topics, each on its own
    database (`service_database(mongo_config.database, name)`), as in production."""
    log_dir: Path = tmp_path_factory.mktemp("service-logs")
    envs = {
        name: service_environment(
            name,
            endpoints=endpoints,
            topics=topics,
            database=service_database(mongo_config.database, name),
            admin_token=admin_token,
        )
        for name in SERVICES
    }
    with running_services(envs, log_dir) as services:
        yield services


@pytest.fixture(scope="session")
def ministry_headers(
    mongo: MongoClient, mongo_config: MongoSettings
) -> Callable[[str], Awaitable[dict[str, str]]]:
    """Makes `Authorization` headers with a fresh ingest API key for a ministry."""

    async def make(ministry: str) -> dict[str, str]:
        database = service_database(mongo_config.database, "ingest")
        key, _ = await ApiKeyStore(mongo, database).create(ministry, datetime.now(UTC), "e2e tests")
        return {"authorization": f"Bearer {key}"}

    return make

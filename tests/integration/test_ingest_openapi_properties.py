"""Property-based API test: schemathesis generates requests from the ingest OpenAPI document and
sends them in-process to the app, whose lifespan runs against the real Kafka and FerretDB. No
answer may be a 5xx, and every answer must match the documented status, content type, headers
and schema."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from services.ingest.bootstrap import create_app
from shared.mongo import MongoClient
from shared.settings import KafkaSettings, MongoSettings, TopicSettings
from tests.support.ingest import create_key, ingest_settings, load_real_catalogue

pytestmark = pytest.mark.integration

ADMIN_TOKEN = secrets.token_urlsafe(16)
EXAMPLES_PER_OPERATION = 40
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


@pytest.fixture(scope="module")
async def database(mongo: MongoClient, mongo_config: MongoSettings) -> AsyncIterator[str]:
    name = f"{mongo_config.database}_ingprop_{secrets.token_hex(3)}"
    await load_real_catalogue(mongo, name)
    yield name
    await mongo.drop_database(name)


@pytest.fixture(scope="module")
async def ministry_key(mongo: MongoClient, database: str) -> str:
    return await create_key(mongo, database, "digital")


@pytest.fixture(scope="module")
def ingest_app(
    kafka: KafkaSettings, topics: TopicSettings, mongo_config: MongoSettings, database: str
) -> FastAPI:
    """The app itself; schemathesis runs its lifespan (Kafka producer, Mongo client) in its own
    event loop and sends every request through it."""
    return create_app(
        ingest_settings(
            kafka,
            topics,
            mongo_config.model_copy(update={"database": database}),
            SHINCHOKU_ADMIN_TOKEN=ADMIN_TOKEN,
            rate_limit={"events_per_s": 100_000, "burst": 100_000},
        )
    )


@pytest.fixture(scope="module")
def ingest_schema(ingest_app: FastAPI) -> Any:
    return schemathesis.openapi.from_asgi("/openapi.json", ingest_app)


def explore(operation: Any, token: str) -> None:
    """Run schemathesis' generated cases for one operation, authenticated with `token`."""
    headers = {"Authorization": f"Bearer {token}"}

    @given(case=operation.as_strategy())
    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        database=None,
    )
    def exchange(case: Any) -> None:
        case.call_and_validate(headers=headers, checks=CHECKS)

    exchange()


def test_no_5xx_and_every_answer_matches_the_openapi_document(
    ingest_schema: Any, ministry_key: str
) -> None:
    """Whatever schemathesis sends to any operation, the answer is documented and conforms to
    its schema (status code, content type, headers, body), and is never a 5xx."""
    operations = [result.ok() for result in ingest_schema.get_all_operations()]
    assert {op.path for op in operations} >= {"/v1/events", "/v1/events:batch", "/v1/admin/keys"}
    for operation in operations:
        token = ADMIN_TOKEN if operation.path.startswith("/v1/admin") else ministry_key
        explore(operation, token)

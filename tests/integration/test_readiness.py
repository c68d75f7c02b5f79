"""/readyz follows the dependencies: unready within seconds when FerretDB or Kafka stops, ready
again when it is back."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from harness.services import (
    RunningService,
    service_environment,
    start_service,
    stop_service,
    wait_ready,
)
from harness.stack import StackEndpoints
from shared.kafka import ensure_topics
from shared.settings import KafkaSettings, MongoSettings, TopicSettings
from tests.support.ferretdb import PrivateFerretDB
from tests.support.kafka_broker import PrivateKafkaBroker
from tests.support.stack import isolated_topics, random_suffix

pytestmark = pytest.mark.integration


def readiness(service: RunningService) -> tuple[int, dict[str, bool]]:
    response = httpx.get(f"{service.url}/readyz", timeout=10.0)
    return response.status_code, response.json().get("checks", {})


def wait_for_status(service: RunningService, status: int, timeout_s: float) -> dict[str, bool]:
    deadline = time.monotonic() + timeout_s
    checks: dict[str, bool] = {}
    while time.monotonic() < deadline:
        code, checks = readiness(service)
        if code == status:
            return checks
        time.sleep(0.25)
    raise AssertionError(f"/readyz did not answer {status} within {timeout_s}s: {checks}")


# A route of each service that reads the database on every call.
DATABASE_ROUTES = {
    "ingest": "/v1/admin/keys",
    "kpi": "/v1/exports/transitions",
    "alerts": "/v1/subscriptions",
}


def assert_database_outage_is_a_503_problem(service: RunningService, name: str) -> None:
    """While the database is down, a route that needs it answers 503 problem+json with
    Retry-After (the client's cue to retry), never a 500."""
    response = httpx.get(
        f"{service.url}{DATABASE_ROUTES[name]}",
        headers={"Authorization": "Bearer readiness-test"},
        timeout=30.0,
    )
    assert response.status_code == 503, (name, response.status_code, response.text)
    assert response.headers["content-type"] == "application/problem+json"
    assert int(response.headers["retry-after"]) >= 1
    assert response.json()["code"] == "storage"


@pytest.fixture
def private_database(tmp_path: Path) -> Iterator[PrivateFerretDB]:
    database = PrivateFerretDB(tmp_path / "ferretdb")
    database.start()
    yield database
    database.remove()


@pytest.mark.parametrize("name", ["ingest", "kpi", "alerts"])
def test_readyz_turns_unready_when_the_database_stops_and_ready_when_it_returns(
    name: str,
    private_database: PrivateFerretDB,
    endpoints: StackEndpoints,
    topics: TopicSettings,
    mongo_config: MongoSettings,
    tmp_path: Path,
) -> None:
    """Each service reports the database outage on /readyz within 15 s, answers 503 with
    Retry-After on a route that needs the database, and recovers within 30 s of the database's
    return, while /healthz stays up throughout."""
    env = service_environment(
        name,
        endpoints=endpoints,
        topics=topics,
        database=mongo_config.database,
        admin_token="readiness-test",
        extra={f"SHINCHOKU_{name.upper()}_MONGO__URL": private_database.url},
    )
    service = start_service(name, env, tmp_path)
    try:
        wait_ready(service)
        private_database.stop()
        checks = wait_for_status(service, 503, timeout_s=15)
        assert checks["mongo"] is False
        assert checks["kafka"] is True
        assert httpx.get(f"{service.url}/healthz", timeout=5).status_code == 200
        assert_database_outage_is_a_503_problem(service, name)
        private_database.start()
        checks = wait_for_status(service, 200, timeout_s=30)
        assert all(checks.values())
    finally:
        stop_service(service)


async def test_readyz_turns_unready_when_kafka_stops_and_ready_when_it_returns(
    endpoints: StackEndpoints,
    mongo_config: MongoSettings,
    tmp_path: Path,
) -> None:
    """With their broker stopped, all three services report it on /readyz within 15 s (the
    process stays alive), and are ready again within 60 s of the broker's return."""
    broker = PrivateKafkaBroker(tmp_path / "kafka")
    broker.start()
    services: list[RunningService] = []
    try:
        topics = isolated_topics(f"ready{random_suffix()}", partitions=1)
        await ensure_topics(KafkaSettings(bootstrap_servers=broker.bootstrap_servers), topics)
        private = StackEndpoints(kafka=broker.bootstrap_servers, mongo=endpoints.mongo)
        for name in ("ingest", "kpi", "alerts"):
            env = service_environment(
                name,
                endpoints=private,
                topics=topics,
                database=mongo_config.database,
                admin_token="readiness-test",
            )
            services.append(start_service(name, env, tmp_path))
        for service in services:
            wait_ready(service)
        broker.stop()
        for service in services:
            checks = await asyncio.to_thread(wait_for_status, service, 503, 15)
            assert checks["kafka"] is False, service.name
            assert checks["mongo"] is True, service.name
        broker.start()
        for service in services:
            checks = await asyncio.to_thread(wait_for_status, service, 200, 60)
            assert all(checks.values()), service.name
    finally:
        for service in services:
            stop_service(service)
        broker.stop()

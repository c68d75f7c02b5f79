"""Ingest as a real process: a duplicate is recognised across a restart, keys made and revoked
with the `shinchoku keys` CLI work as documented, and no key ever reaches the logs."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from shared.mongo import MongoClient
from shared.settings import KafkaSettings, MongoSettings, TopicSettings
from tests.support.ingest import (
    STRUCTURED,
    bearer,
    body,
    kpi_event,
    load_real_catalogue,
    records_with_ids,
)
from tests.support.services import (
    ROOT,
    RunningService,
    service_environment,
    start_service,
    stop_service,
    wait_ready,
)
from tests.support.stack import StackEndpoints

pytestmark = pytest.mark.integration

KEY_CACHE_TTL_S = 1.0


@pytest.fixture(scope="module")
async def database(mongo: MongoClient, mongo_config: MongoSettings) -> AsyncIterator[str]:
    name = f"{mongo_config.database}_ingrst_{secrets.token_hex(3)}"
    await load_real_catalogue(mongo, name)
    yield name
    await mongo.drop_database(name)


def keys_cli(
    database: str, endpoints: StackEndpoints, *args: str
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHINCHOKU_")}
    env.update(
        {
            "SHINCHOKU_INGEST_MONGO__URL": endpoints.mongo,
            "SHINCHOKU_INGEST_MONGO__DATABASE": database,
        }
    )
    return subprocess.run(
        [sys.executable, "-m", "shared.cli", "keys", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@contextmanager
def ingest_process(env: dict[str, str], log_dir: Path) -> Iterator[RunningService]:
    service = start_service("ingest", env, log_dir)
    try:
        wait_ready(service)
        yield service
    finally:
        stop_service(service)


def post(service: RunningService, key: str, event: dict[str, object]) -> httpx.Response:
    return httpx.post(
        f"{service.url}/v1/events",
        content=body(event),
        headers={**STRUCTURED, **bearer(key)},
        timeout=30,
    )


def read_logs(directory: Path) -> str:
    return "".join(path.read_text(errors="replace") for path in directory.glob("ingest-*.log"))


def restart_and_revoke(
    env: dict[str, str],
    log_dir: Path,
    database: str,
    endpoints: StackEndpoints,
    key: str,
    event: dict[str, object],
) -> None:
    """Accept, restart, see the duplicate; revoke with the CLI and see 401 within the bound."""
    with ingest_process(env, log_dir) as first:
        assert post(first, key, event).status_code == 202
        assert post(first, key, kpi_event(130.0)).status_code == 422
        assert post(first, "shk_0123456789ab_" + "A" * 43, event).status_code == 401
    with ingest_process(env, log_dir) as second:
        again = post(second, key, event)
        assert again.status_code == 200, again.text
        assert again.json()["duplicate"] is True

        listed = keys_cli(database, endpoints, "list", "--json")
        assert key.split("_", 2)[2] not in listed.stdout
        key_id = key.split("_")[1]
        assert keys_cli(database, endpoints, "revoke", key_id).returncode == 0
        deadline = time.monotonic() + KEY_CACHE_TTL_S + 10
        while post(second, key, kpi_event()).status_code != 401:
            assert time.monotonic() < deadline, "a revoked key still works past the cache bound"
            time.sleep(0.2)


async def test_a_duplicate_is_recognised_after_a_restart_and_keys_stay_out_of_logs(
    endpoints: StackEndpoints,
    kafka: KafkaSettings,
    topics: TopicSettings,
    database: str,
    tmp_path: Path,
) -> None:
    """An event accepted before a restart answers 200 duplicate after it, and the topic holds it
    once; a CLI-created key works, a CLI-revoked key answers 401 within the cache bound; neither
    key nor secret appears in any log line, even at DEBUG."""
    created = keys_cli(database, endpoints, "create", "--ministry", "digital", "--json")
    assert created.returncode == 0, created.stderr
    key = json.loads(created.stdout)["key"]
    secret = key.split("_", 2)[2]
    env = service_environment(
        "ingest",
        endpoints=endpoints,
        topics=topics,
        database=database,
        admin_token=secrets.token_urlsafe(16),
        extra={
            "SHINCHOKU_INGEST_LOG_LEVEL": "DEBUG",
            "SHINCHOKU_INGEST_KEY_CACHE_TTL_S": str(KEY_CACHE_TTL_S),
        },
    )
    event = kpi_event(95.5)
    key_id = json.loads(created.stdout)["key_id"]
    await asyncio.to_thread(restart_and_revoke, env, tmp_path, database, endpoints, key, event)

    found = await records_with_ids(kafka.bootstrap_servers, topics.events, [event["id"]])
    assert len(found[event["id"]]) == 1
    logs = await asyncio.to_thread(read_logs, tmp_path)
    assert '"event": "event_refused"' in logs
    assert f'"key_id": "{key_id}"' in logs
    assert '"event": "auth_failed"' in logs
    assert secret not in logs
    assert key not in logs

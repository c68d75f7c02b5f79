"""Runs the three services as real processes (`python -m services.<name>`) against the local
stack, for the e2e tests and the benchmarks."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from harness.stack import StackEndpoints, free_port
from shared.catalogue_store import CatalogueStore
from shared.kafka_acls import (
    AclBinding,
    ServicePrincipals,
    alerts_bindings,
    create_acls,
    ingest_bindings,
    kpi_bindings,
)
from shared.mongo import MongoClient
from shared.settings import CATALOGUE_READERS, TopicSettings

ROOT = Path(__file__).resolve().parents[1]
SERVICES = ("ingest", "kpi", "alerts")


@dataclass
class RunningService:
    name: str
    url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


def service_database(base: str, name: str) -> str:
    """The database of service `name` in a test whose services each own one (as in production:
    `system` in tests/e2e/conftest.py), named after the test's `base`."""
    return f"{base}_{name}"


async def upsert_catalogue_item(mongo: MongoClient, base: str, item: dict[str, Any]) -> None:
    """A catalogue entry in the copy of every service that reads the catalogue (what
    `shinchoku catalogue load` does), for services on `service_database(base, ...)`."""
    for name in CATALOGUE_READERS:
        await CatalogueStore(mongo, service_database(base, name)).upsert_item(item)


def service_environment(
    name: str,
    *,
    endpoints: StackEndpoints,
    topics: TopicSettings,
    database: str,
    admin_token: str,
    extra: Mapping[str, str] | None = None,
) -> dict[str, str]:
    prefix = f"SHINCHOKU_{name.upper()}_"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHINCHOKU_")}
    # each service as its own Kafka principal: the e2e tier runs on the broker's ACLs
    env.update(endpoints.kafka_env(prefix, name))
    env.update(
        {
            f"{prefix}MONGO__URL": endpoints.mongo,
            f"{prefix}MONGO__DATABASE": database,
            f"{prefix}TOPICS__EVENTS": topics.events,
            f"{prefix}TOPICS__STATUS": topics.status,
            f"{prefix}TOPICS__DEAD_LETTER": topics.dead_letter,
            f"{prefix}TOPICS__PARTITIONS": str(topics.partitions),
            f"{prefix}CONSUMER_GROUP": f"{name}-{database}",
            "SHINCHOKU_ADMIN_TOKEN": admin_token,
        }
    )
    if name == "alerts":
        env[f"{prefix}ALLOWED_TARGET_NETWORKS"] = json.dumps(["127.0.0.1/32"])
        env[f"{prefix}RETRY_SCHEDULE_S"] = json.dumps([0, 0.5, 1, 2, 4])
        env[f"{prefix}WORKER_POLL_S"] = "0.2"
        # Compressed notification policy: a 2 s grouping window (two slips of one ingest batch
        # land in one delivery), short leases and claim recovery, a prompt batcher.
        env[f"{prefix}GROUPING_WINDOW_S"] = "2"
        env[f"{prefix}BATCHER_POLL_S"] = "0.1"
        env[f"{prefix}LEASE_MARGIN_S"] = "5"
        env[f"{prefix}DELIVERY_TIMEOUT_S"] = "5"
        env[f"{prefix}CLAIM_RECOVERY_S"] = "5"
        env[f"{prefix}METRICS_REFRESH_S"] = "1"
    env.update(extra or {})
    grant_service(name, endpoints, topics, env.get(f"{prefix}CONSUMER_GROUP", ""))
    return env


def grant_service(name: str, endpoints: StackEndpoints, topics: TopicSettings, group: str) -> None:
    """The ACLs `shinchoku kafka acls` gives the service on the real topics, on this test's
    topics and consumer group instead (created as the admin; none on a PLAINTEXT broker)."""
    admin = endpoints.kafka_as("admin")
    if admin.password is None:
        return
    principals = ServicePrincipals(kpi_group=group, alerts_group=group)
    bindings: list[AclBinding] = {
        "ingest": ingest_bindings,
        "kpi": kpi_bindings,
        "alerts": alerts_bindings,
    }[name](principals, topics)
    # in a thread of its own: callers may be sync code or inside a running event loop
    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(asyncio.run, create_acls(admin, bindings)).result(timeout=60)


def wait_ready(service: RunningService, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    last = ""
    while time.monotonic() < deadline:
        if service.process.poll() is not None:
            raise RuntimeError(f"{service.name} exited:\n{service.log_tail()}")
        try:
            response = httpx.get(f"{service.url}/readyz", timeout=3.0)
            if response.status_code == 200:
                return
            last = response.text
        except httpx.HTTPError as error:
            last = repr(error)
        time.sleep(0.2)
    raise RuntimeError(f"{service.name} not ready in {timeout_s}s: {last}\n{service.log_tail()}")


def start_service(
    name: str,
    env: Mapping[str, str],
    log_dir: Path,
    port: int | None = None,
    *,
    python_args: Sequence[str] = (),
) -> RunningService:
    """`python [python_args] -m services.<name>` on `port` (a free one by default), not yet
    ready: `wait_ready` waits for its /readyz."""
    port = port or free_port()
    log_path = log_dir / f"{name}-{port}.log"
    with log_path.open("ab") as out:
        process = subprocess.Popen(
            [
                sys.executable,
                *python_args,
                "-m",
                f"services.{name}",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ],
            cwd=ROOT,
            env=dict(env),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    return RunningService(name, f"http://127.0.0.1:{port}", process, log_path)


def stop_service(service: RunningService, *, kill: bool = False) -> None:
    if service.process.poll() is None:
        if kill:
            service.process.kill()
        else:
            service.process.terminate()
        try:
            service.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            service.process.kill()
            service.process.wait(timeout=10)


@contextmanager
def running_services(
    envs: Mapping[str, Mapping[str, str]], log_dir: Path
) -> Iterator[dict[str, RunningService]]:
    started = {name: start_service(name, env, log_dir) for name, env in envs.items()}
    try:
        for service in started.values():
            wait_ready(service)
        yield started
    finally:
        for service in started.values():
            stop_service(service)

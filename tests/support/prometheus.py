"""The local stack's Prometheus for tests: make it scrape the services a test started (file_sd
targets under a `deployment` label of the test's own), and ask it instant queries.

deploy/local/stack.py renders the Prometheus configuration with, for each service's job, a
file_sd glob ``<cache>/stack/prometheus/targets/<service>-*.json``. A test writes one file per
service there, named after its process id, and removes it when done; files left by a test
process that no longer runs are removed by the next one.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import yaml

from harness.services import RunningService
from tests.support.kafka_broker import local_stack_module


class PrometheusQueryError(AssertionError):
    """Prometheus answered a query with an error."""


async def query(prometheus: str, expr: str) -> list[dict[str, Any]]:
    """An instant query; the result vector (or scalar as one sample), or PrometheusQueryError."""
    async with httpx.AsyncClient(timeout=30) as http:
        answer = await http.get(f"{prometheus}/api/v1/query", params={"query": expr})
    body = answer.json()
    if answer.status_code != 200 or body.get("status") != "success":
        raise PrometheusQueryError(f"{expr}: {body.get('errorType')}: {body.get('error')}")
    data = body["data"]
    if data["resultType"] in ("scalar", "string"):
        return [{"metric": {}, "value": data["result"]}]
    result: list[dict[str, Any]] = data["result"]
    return result


def _file_sd_dirs(config: Mapping[str, Any]) -> dict[str, Path]:
    found = {}
    for job in config.get("scrape_configs", []):
        for file_sd in job.get("file_sd_configs", []):
            for pattern in file_sd.get("files", []):
                found[job["job_name"].removeprefix("shinchoku-")] = Path(pattern).parent
    return found


def loaded_config(prometheus: str) -> dict[str, Any]:
    answer = httpx.get(f"{prometheus}/api/v1/status/config", timeout=10)
    answer.raise_for_status()
    config: dict[str, Any] = yaml.safe_load(answer.json()["data"]["yaml"])
    return config


def local_targets_dir(prometheus: str) -> Path:
    """The folder the local Prometheus reads file_sd targets from, after making it load the
    current rendering of deploy/prometheus (configuration and rules) with a reload."""
    flags = httpx.get(f"{prometheus}/api/v1/status/flags", timeout=10).json()["data"]
    config_file = Path(flags["config.file"]).resolve()
    rendered = local_stack_module().render_local_prometheus_config().resolve()
    if config_file != rendered:
        pytest.fail(
            f"the Prometheus at {prometheus} reads {config_file}, not the local rendering "
            f"{rendered}: start it with `python3 deploy/local/stack.py start`"
        )
    if urlsplit(prometheus).hostname not in ("127.0.0.1", "localhost"):
        pytest.fail(f"{prometheus} is not the local stack's Prometheus")
    reload = httpx.post(f"{prometheus}/-/reload", timeout=30)
    assert reload.status_code == 200, reload.text
    directories = set(_file_sd_dirs(loaded_config(prometheus)).values())
    assert len(directories) == 1, directories
    (directory,) = directories
    directory.mkdir(parents=True, exist_ok=True)
    return directory


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove_abandoned(directory: Path) -> None:
    for path in directory.glob("*-test-*.json"):
        pid = path.stem.split("-test-", 1)[1].split("-", 1)[0]
        if pid.isdigit() and not _alive(int(pid)):
            path.unlink(missing_ok=True)


@contextlib.contextmanager
def scraped(
    directory: Path, services: Mapping[str, RunningService], deployment: str
) -> Iterator[None]:
    """Have Prometheus scrape `services` as `deployment` while the block runs."""
    _remove_abandoned(directory)
    written = []
    try:
        for name, service in services.items():
            target = [
                {
                    "targets": [urlsplit(service.url).netloc],
                    "labels": {"service": name, "deployment": deployment},
                }
            ]
            path = directory / f"{name}-test-{os.getpid()}-{deployment}.json"
            partial = path.with_suffix(".tmp")  # not matched by the *.json glob
            partial.write_text(json.dumps(target))
            partial.replace(path)
            written.append(path)
        yield
    finally:
        for path in written:
            path.unlink(missing_ok=True)


async def wait_for_targets(prometheus: str, deployment: str, count: int, timeout_s: float) -> None:
    """Until Prometheus has scraped `count` targets of `deployment` successfully."""
    deadline = time.monotonic() + timeout_s
    expr = f'up{{deployment="{deployment}"}} == 1'
    while time.monotonic() < deadline:
        if len(await query(prometheus, expr)) >= count:
            return
        await asyncio.sleep(1.0)
    async with httpx.AsyncClient(timeout=10) as http:
        targets = (await http.get(f"{prometheus}/api/v1/targets")).json()["data"]
    mine = [
        (t["labels"], t["health"], t["lastError"])
        for t in targets["activeTargets"]
        if t["labels"].get("deployment") == deployment
    ]
    raise AssertionError(f"Prometheus did not scrape {count} targets of {deployment}: {mine}")

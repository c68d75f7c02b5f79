"""An ownership change made through ingest's admin API reaches the kpi service (its own
database, its own copy of the catalogue) over Kafka: kpi's view of the item shows the new owners
within a bounded wait, the status change of an event the new owner posts right after the change
carries them, and they stay after a kpi restart and a `shinchoku catalogue load`; a reset goes
the same way. Ingest and kpi run as processes, each as its own Kafka principal."""

from __future__ import annotations

import asyncio
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import pytest

from harness.services import (
    ROOT,
    RunningService,
    service_environment,
    start_service,
    stop_service,
    wait_ready,
)
from harness.stack import StackEndpoints
from services.kpi.adapters.repository import KpiRepository
from shared.catalogue_store import ITEMS
from shared.kafka import ensure_topics
from shared.logs import caused_by
from shared.mongo import MongoClient
from shared.settings import KafkaSettings, MongoSettings
from tests.support.faults import eventually
from tests.support.ingest import (
    STRUCTURED,
    bearer,
    body,
    create_key,
    kpi_event,
    load_real_catalogue,
)
from tests.support.stack import isolated_topics, random_suffix
from tests.support.topics import TopicTail, status_changes

pytestmark = pytest.mark.e2e

ITEM = "kpi.5g-population-coverage"  # mic (by remit) in the release
ADMIN_TOKEN = secrets.token_urlsafe(16)
# Bounded waits (conditions polled, never slept on): generous for a loaded 2-core machine.
PROPAGATION_BOUND_S = 60.0


def admin() -> dict[str, str]:
    return {"authorization": f"Bearer {ADMIN_TOKEN}"}


@contextmanager
def process(name: str, env: dict[str, str], log_dir: Path) -> Iterator[RunningService]:
    service = start_service(name, env, log_dir)
    try:
        wait_ready(service)
        yield service
    finally:
        stop_service(service)


def kpi_owners(kpi: RunningService) -> list[str]:
    answer = httpx.get(f"{kpi.url}/v1/kpis/{ITEM}", timeout=30)
    assert answer.status_code == 200, answer.text
    owners: list[str] = answer.json()["ministries"]
    return owners


def wait_for_owners(kpi: RunningService, expected: list[str]) -> float:
    """Seconds until kpi's view of the item shows `expected` (fails past the bound)."""
    started = time.monotonic()
    while (owners := kpi_owners(kpi)) != expected:
        assert time.monotonic() - started < PROPAGATION_BOUND_S, (owners, kpi.log_tail())
        time.sleep(0.2)
    return time.monotonic() - started


def catalogue_load(endpoints: StackEndpoints, databases: dict[str, str]) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHINCHOKU_")}
    for service, database in databases.items():
        env[f"SHINCHOKU_{service.upper()}_MONGO__URL"] = endpoints.mongo
        env[f"SHINCHOKU_{service.upper()}_MONGO__DATABASE"] = database
    done = subprocess.run(
        [sys.executable, "-m", "shared.cli", "catalogue", "load", "--no-sources"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def scenario(
    endpoints: StackEndpoints,
    envs: dict[str, dict[str, str]],
    databases: dict[str, str],
    key: str,
    log_dir: Path,
    status_tail: TopicTail,
    mongo: MongoClient,
    loop: asyncio.AbstractEventLoop,
) -> dict[str, Any]:
    figures: dict[str, Any] = {}
    with process("ingest", envs["ingest"], log_dir) as ingest:
        with process("kpi", envs["kpi"], log_dir) as kpi:
            assert kpi_owners(kpi) == ["mic"]
            changed = httpx.put(
                f"{ingest.url}/v1/admin/items/{ITEM}/owners",
                headers=admin(),
                json={
                    "owners": ["mic", "digital"],
                    "reason": "the Digital Agency co-reports during the transition",
                    "changed_by": "ops: e2e",
                },
                timeout=30,
            )
            assert changed.status_code == 200, changed.text
            # At once on ingest; its record follows the change in the item's partition.
            report = kpi_event(50.0, kpi_id=ITEM, ministry="digital", as_of=date.today())
            posted = httpx.post(
                f"{ingest.url}/v1/events",
                content=body(report),
                headers={**STRUCTURED, **bearer(key)},
                timeout=30,
            )
            assert posted.status_code == 202, posted.text
            figures["set_seen_by_kpi_s"] = wait_for_owners(kpi, ["mic", "digital"])

            def decided_on_report(seen: list[dict[str, Any]]) -> list[dict[str, Any]]:
                return [
                    change
                    for change in status_changes(seen, ITEM)
                    if report["id"] in caused_by(change.get("explanation"))
                ]

            seen = asyncio.run_coroutine_threadsafe(
                status_tail.wait_for(lambda s: bool(decided_on_report(s)), 120), loop
            ).result(timeout=150)
            figures["status_ministries"] = decided_on_report(seen)[0]["ministries"]

        with process("kpi", envs["kpi"], log_dir) as kpi:  # restarted
            assert kpi_owners(kpi) == ["mic", "digital"]
            figures["load_output"] = catalogue_load(endpoints, databases)
            assert kpi_owners(kpi) == ["mic", "digital"]

            reset = httpx.post(
                f"{ingest.url}/v1/admin/items/{ITEM}/owners:reset",
                headers=admin(),
                json={"reason": "back to the plan", "changed_by": "ops: e2e"},
                timeout=30,
            )
            assert reset.status_code == 200, reset.text
            figures["reset_seen_by_kpi_s"] = wait_for_owners(kpi, ["mic"])
            # No event follows the reset: kpi re-evaluates the item itself, so its state (what
            # scorecards and the metrics by ministry count) names the owners in force.
            asyncio.run_coroutine_threadsafe(
                wait_for_state_owners(mongo, databases["kpi"], ["mic"]), loop
            ).result(timeout=PROPAGATION_BOUND_S + 30)
    return figures


async def wait_for_state_owners(mongo: MongoClient, database: str, expected: list[str]) -> None:
    repository = KpiRepository(mongo[database])

    async def owners_match() -> bool:
        return ((await repository.state(ITEM)) or {}).get("ministries") == expected

    await eventually(
        owners_match, timeout_s=PROPAGATION_BOUND_S, what=f"kpi's state of {ITEM} names {expected}"
    )


async def test_an_ownership_change_reaches_kpi_and_survives_restart_and_reload(
    endpoints: StackEndpoints,
    kafka: KafkaSettings,
    mongo: MongoClient,
    mongo_config: MongoSettings,
    tmp_path: Path,
) -> None:
    run = random_suffix()
    topics = isolated_topics(f"own{run}")
    await ensure_topics(kafka, topics)
    databases = {s: f"{mongo_config.database}_own{run}_{s}" for s in ("ingest", "kpi")}
    try:
        for database in databases.values():
            await load_real_catalogue(mongo, database)
        key = await create_key(mongo, databases["ingest"], "digital")
        envs = {
            name: service_environment(
                name,
                endpoints=endpoints,
                topics=topics,
                database=database,
                admin_token=ADMIN_TOKEN,
            )
            for name, database in databases.items()
        }
        async with TopicTail(endpoints.kafka, topics.status) as status_tail:
            figures = await asyncio.to_thread(
                scenario,
                endpoints,
                envs,
                databases,
                key,
                tmp_path,
                status_tail,
                mongo,
                asyncio.get_running_loop(),
            )
        print(
            f"owners seen by kpi after {figures['set_seen_by_kpi_s']:.2f}s (set), "
            f"{figures['reset_seen_by_kpi_s']:.2f}s (reset)"
        )
        # The status change caused by the new owner's report names the new owners.
        assert figures["status_ministries"] == ["mic", "digital"]
        # The load kept the override in both copies (ingest's record applied to kpi's too).
        assert figures["load_output"].count("ownership overrides kept: 1") == 2
        stored = await mongo[databases["kpi"]][ITEMS].find_one({"_id": ITEM})
        assert stored is not None
        assert (stored["ministries"], "ownership_override" in stored) == (["mic"], False)
    finally:
        for database in databases.values():
            await mongo.drop_database(database)

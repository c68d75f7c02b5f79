"""The status engine seen from outside: observations through ingest move a real catalogue KPI
across statuses, and time alone turns a milestone overdue."""

from __future__ import annotations

import json
import secrets
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from harness.services import (
    RunningService,
    running_services,
    service_database,
    service_environment,
    start_service,
    stop_service,
    upsert_catalogue_item,
    wait_ready,
)
from harness.stack import StackEndpoints
from services.ingest.adapters.keys import ApiKeyStore
from shared.catalogue.validate import load_catalogue
from shared.catalogue_store import MEASURES, CatalogueStore
from shared.kafka import ensure_topics
from shared.mongo import MongoClient
from shared.settings import KafkaSettings, MongoSettings, TopicSettings
from tests.support.stack import isolated_topics, random_suffix
from tests.support.topics import TopicTail, status_changes

pytestmark = pytest.mark.e2e


def catalogue_entry(entry_id: str) -> dict[str, Any]:
    for entry in load_catalogue().show_json()["kpis"]:
        if entry["id"] == entry_id:
            return {**entry, "_id": entry["id"], "state": "active"}
    raise AssertionError(f"{entry_id} is not in the catalogue")


async def store_measure_of(entry: dict[str, Any], mongo: MongoClient, database: str) -> None:
    for measure in load_catalogue().show_json()["measures"]:
        if measure["id"] == entry["measure_id"]:
            document = {**measure, "_id": measure["id"], "state": "active"}
            await mongo[database][MEASURES].replace_one(
                {"_id": measure["id"]}, document, upsert=True
            )


def cloudevent(entry: dict[str, Any], data: dict[str, Any], event_type: str) -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "id": secrets.token_hex(8),
        "source": f"/ministries/{entry['ministries'][0]}",
        "type": event_type,
        "subject": entry["id"],
        "time": datetime.now(UTC).isoformat(),
        "data": data,
    }


async def post(
    http: httpx.AsyncClient, ingest: RunningService, event: dict[str, Any], auth: dict[str, str]
) -> None:
    answer = await http.post(
        f"{ingest.url}/v1/events",
        content=json.dumps(event),
        headers={"content-type": "application/cloudevents+json", **auth},
    )
    assert answer.status_code == 202, answer.text


def settled_changes(subject: str, count: int) -> Callable[[list[dict[str, Any]]], bool]:
    """A predicate on the status changes seen: `subject` has had `count` changes to a status
    other than no_data."""

    def reached(seen: list[dict[str, Any]]) -> bool:
        changes = [c for c in status_changes(seen, subject) if c["status"] != "no_data"]
        return len(changes) >= count

    return reached


async def test_a_kpi_goes_from_on_track_to_at_risk_to_off_track_and_back(
    system: dict[str, RunningService],
    mongo: MongoClient,
    mongo_config: MongoSettings,
    kafka: KafkaSettings,
    topics: TopicSettings,
    ministry_headers: Callable[[str], Awaitable[dict[str, str]]],
) -> None:
    """5G population coverage (95 → 97 → 99 %) reported on plan, then behind, far behind, and
    recovering: each status change is published once, in order, within one episode, and the
    query API explains the current status with the events that decided it."""
    entry = catalogue_entry("kpi.5g-population-coverage")
    await upsert_catalogue_item(mongo, mongo_config.database, entry)
    # kpi explains the status with the measure's name: its copy of the catalogue has it.
    await store_measure_of(entry, mongo, service_database(mongo_config.database, "kpi"))
    auth = await ministry_headers(entry["ministries"][0])
    today = date.today()
    # (value, days before today, status after it): the engine's thresholds are 10 % and 25 % of
    # the planned change from the 2020 baseline (30 %), and a falling trend forecasts a miss.
    journey = [
        (97.5, 70, "on_track"),
        (88.0, 60, "at_risk"),
        (75.0, 50, "off_track"),
        (97.5, 40, "at_risk"),
        (98.0, 30, "on_track"),
    ]
    async with (
        TopicTail(kafka.bootstrap_servers, topics.status) as tail,
        httpx.AsyncClient(timeout=20) as http,
    ):
        for number, (value, days_back, expected) in enumerate(journey, start=1):
            event = cloudevent(
                entry,
                {
                    "kpi_id": entry["id"],
                    "value": value,
                    "as_of": (today - timedelta(days=days_back)).isoformat(),
                },
                "shinchoku.kpi.observed.v1",
            )
            await post(http, system["ingest"], event, auth)
            seen = await tail.wait_for(settled_changes(entry["id"], number))
            assert status_changes(seen, entry["id"])[-1]["status"] == expected
            assert status_changes(seen, entry["id"])[-1]["explanation"]["evidence"]

        changes = [c for c in status_changes(tail.seen, entry["id"]) if c["status"] != "no_data"]
        assert [c["status"] for c in changes] == [step[2] for step in journey]
        episode = {c["episode_id"] for c in changes[1:4]}
        assert len(episode) == 1, "at risk → off track → at risk is one episode"
        assert changes[4]["episode_id"] in episode, "the recovery closes that episode"
        assert all(c["ministries"] == entry["ministries"] for c in changes)

        answer = await http.get(f"{system['kpi'].url}/v1/kpis/{entry['id']}")
        body = answer.json()
        assert body["status"] == "on_track"
        assert body["evaluation"]["explanation"]["rule_id"] == "K9"
        assert len(body["observations"]) == len(journey)

        measure = (await http.get(f"{system['kpi'].url}/v1/measures/{entry['measure_id']}")).json()
        assert measure["status"]["status"] == "on_track"
        assert entry["id"] in [child["subject_id"] for child in measure["status"]["children"]]

        past = (today - timedelta(days=50)).isoformat()
        answer = await http.get(
            f"{system['kpi'].url}/v1/kpis/{entry['id']}", params={"as_of": past}
        )
        assert answer.json()["status"] == "off_track", "as it was on the day of the 75 % report"


async def test_a_milestone_turns_overdue_when_its_deadline_passes_with_no_event(
    endpoints: StackEndpoints,
    kafka: KafkaSettings,
    mongo: MongoClient,
    tmp_path: Path,
) -> None:
    """A milestone reported in progress before its deadline is on track; the kpi service
    restarted with its clock past the deadline turns it overdue, with the days late, and
    publishes the change although no event was posted."""
    run = random_suffix()
    topics = isolated_topics(f"clock{run}")
    await ensure_topics(kafka, topics)
    database = f"test_clock_{run}"
    entry = catalogue_entry("ms.ksk-next-generation")
    deadline = date.fromisoformat(entry["targets"][0]["deadline"])
    await CatalogueStore(mongo, database).upsert_item(entry)
    key, _ = await ApiKeyStore(mongo, database).create(
        entry["ministries"][0], datetime.now(UTC), "clock test"
    )
    auth = {"authorization": f"Bearer {key}"}
    envs = {
        name: service_environment(
            name, endpoints=endpoints, topics=topics, database=database, admin_token="clock-test"
        )
        for name in ("ingest", "kpi")
    }
    try:
        async with (
            TopicTail(kafka.bootstrap_servers, topics.status) as tail,
            httpx.AsyncClient(timeout=20) as http,
        ):
            with running_services(envs, tmp_path) as services:
                report = cloudevent(
                    entry,
                    {
                        "milestone_id": entry["id"],
                        "state": "in_progress",
                        "percent_complete": 40,
                        "expected_completion": (deadline - timedelta(days=60)).isoformat(),
                        "as_of": date.today().isoformat(),
                    },
                    "shinchoku.milestone.reported.v1",
                )
                await post(http, services["ingest"], report, auth)
                await tail.wait_for(
                    lambda s: any(c["status"] == "on_track" for c in status_changes(s, entry["id"]))
                )
                stop_service(services["kpi"])
                days_ahead = (deadline - date.today()).days + 30
                later = start_service(
                    "kpi",
                    {**envs["kpi"], "SHINCHOKU_KPI_CLOCK_OFFSET_DAYS": str(days_ahead)},
                    tmp_path,
                )
                try:
                    wait_ready(later)
                    seen = await tail.wait_for(
                        lambda s: any(
                            c["status"] == "overdue" for c in status_changes(s, entry["id"])
                        )
                    )
                    overdue = status_changes(seen, entry["id"])[-1]
                    assert overdue["previous_status"] == "on_track"
                    assert overdue["explanation"]["rule_id"] == "M3"
                    body = (await http.get(f"{later.url}/v1/kpis/{entry['id']}")).json()
                    assert body["status"] == "overdue"
                    assert body["evaluation"]["days_late"] == 30
                finally:
                    stop_service(later)
    finally:
        await mongo.drop_database(database)

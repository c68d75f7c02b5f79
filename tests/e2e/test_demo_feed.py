"""The demo feed end to end: `shinchoku simulate`'s feed through the real services, with the kpi
service on the demo's compressed clock, and slips arriving at the demo receiver as signed
webhooks.

The services run on their own topics and database with the whole catalogue loaded: the session's
`system` shares its database with tests that report on catalogue KPIs themselves."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from standardwebhooks import Webhook

from demo.receiver import Receiver, serving, subscribe
from demo.scenario import Course, Scenario
from demo.simulate import MALFORMED_KINDS, FeedClock, demo_scenario, run_feed
from harness.services import running_services, service_environment
from harness.stack import StackEndpoints
from shared.events.contracts import BAD_STATUSES
from shared.kafka import ensure_topics
from shared.mongo import MongoClient
from shared.settings import KafkaSettings
from tests.support.ingest import load_real_catalogue
from tests.support.stack import isolated_topics, random_suffix
from tests.support.topics import TopicTail

pytestmark = pytest.mark.e2e

# 180 simulated days in about 12 s: long enough for the silent ministry's open work to go stale.
DAYS = 180
SPEED = 15.0
# The simulated clock starts when the services are expected to be up; a later start only means
# the feed's first simulated days are posted at once.
STARTUP_S = 15.0


async def test_the_feed_turns_slips_into_signed_webhooks_and_malformed_events_into_problems(
    endpoints: StackEndpoints,
    kafka: KafkaSettings,
    mongo: MongoClient,
    tmp_path: Path,
) -> None:
    """Every valid report is accepted and every malformed one refused with its problem type;
    every subject ends in the status the scenario intends; each slip and the silent ministry's
    stale work reach the receiver as webhooks whose signatures verify."""
    run = random_suffix()
    token, database, topics = f"demo-{run}", f"test_demo_{run}", isolated_topics(f"demo{run}")
    await ensure_topics(kafka, topics)
    await load_real_catalogue(mongo, database)
    clock = FeedClock(
        start=datetime.now(UTC) + timedelta(seconds=STARTUP_S), days=DAYS, speed=SPEED
    )
    envs = {
        name: service_environment(
            name, endpoints=endpoints, topics=topics, database=database, admin_token=token
        )
        for name in ("ingest", "kpi", "alerts")
    }
    envs["kpi"].update(clock.kpi_environment(), SHINCHOKU_KPI_SWEEP_INTERVAL_S="3")
    scenario = demo_scenario(clock)
    feed_lines: list[str] = []
    receiver = Receiver(out=lambda _: None)
    try:
        async with (
            serving(receiver) as url,
            httpx.AsyncClient(timeout=30) as http,
            TopicTail(kafka.bootstrap_servers, topics.status) as statuses,
        ):
            with running_services(envs, tmp_path) as services:
                _, secret = await subscribe(http, services["alerts"].url, token, url)
                receiver.secret = secret
                summary = await run_feed(
                    scenario,
                    clock,
                    ingest_url=services["ingest"].url,
                    admin_token=token,
                    rate=500,
                    malformed_every=20,
                    out=feed_lines.append,
                )
                assert summary.refused == [], "\n".join(feed_lines)
                assert summary.accepted == len(scenario.timeline)
                assert {m.kind for m in summary.malformed} == set(MALFORMED_KINDS)
                assert all(m.as_expected for m in summary.malformed), summary.malformed

                try:
                    await statuses.wait_for(lambda seen: not _wrong(seen, scenario), 90)
                except TimeoutError:
                    pytest.fail(f"intended vs published: {_wrong(statuses.seen, scenario)}")
                alerted = _alerted(scenario)
                await receiver.wait_for(lambda r: alerted <= r.kpi_ids, timeout_s=60)
    finally:
        await mongo.drop_database(database)
    assert receiver.rejected == 0
    # Signed as Standard Webhooks says: the reference library verifies them too.
    for delivery in receiver.deliveries:
        Webhook(secret).verify(delivery.body, delivery.headers)
    kinds = {
        change["type"]
        for delivery in receiver.deliveries
        for change in delivery.payload["data"]["changes"]
    }
    assert {"kpi.slipped", "kpi.stale"} <= kinds


def _alerted(scenario: Scenario) -> set[str]:
    """The subjects that must reach the receiver: every slip, the silence's stale work."""
    return {
        plan.id
        for plan in scenario.subjects.values()
        if plan.course is Course.SLIPPING
        or (plan.course is Course.SILENT and plan.expected in BAD_STATUSES)
    }


def _wrong(seen: list[dict[str, Any]], scenario: Scenario) -> dict[str, tuple[str, str | None]]:
    """Subjects whose latest published status is not the intended one: (intended, published)."""
    latest: dict[str, str] = {}
    for event in seen:
        if event["type"] != "shinchoku.kpi.status_changed.v1":
            continue  # a measure's divergence (the feed assesses measures) is not a status
        latest[event["data"]["kpi_id"]] = event["data"]["status"]
    return {
        subject_id: (status.value, latest.get(subject_id))
        for subject_id, status in scenario.expected.items()
        if latest.get(subject_id) != status
    }

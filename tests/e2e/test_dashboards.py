"""The operators' view on the real stack. Three services run as processes on their own topics
and database (five catalogue entries of four ministries); the local Prometheus scrapes them
under a `deployment` label of this test's own (file_sd targets). After a small realistic feed
(a KPI slipping twice and recovering, a stale one, a blocked and a late milestone, an overdue
KPI, a malformed event, an unknown API key, an undecodable record, a webhook subscription whose
first delivery fails), every /metrics passes `promtool check metrics`, every dashboard query
answers with data for this deployment, and every rule evaluates."""

from __future__ import annotations

import asyncio
import json
import secrets
import shutil
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaProducer

from harness.services import RunningService, running_services, service_environment
from harness.stack import StackEndpoints
from harness.webhooks import WebhookReceiver, webhook_receiver
from shared.catalogue.validate import load_catalogue
from shared.catalogue_store import MEASURES, CatalogueStore
from shared.kafka import client_options, ensure_topics
from shared.mongo import MongoClient
from shared.settings import KafkaSettings, TopicSettings
from tests.support.ingest import bearer, create_key
from tests.support.prometheus import (
    local_targets_dir,
    query,
    scraped,
    wait_for_targets,
)
from tests.support.promql import (
    PROMETHEUS,
    alerting_rules,
    dashboard_queries,
    family_names,
    generator,
    grafana_values,
    recording_rules,
    substitute,
)
from tests.support.stack import isolated_topics, random_suffix

pytestmark = pytest.mark.e2e

SERVICES = ("ingest", "kpi", "alerts")
FIVE_G = "kpi.5g-population-coverage"  # mic: on track, at risk, off track, on track again
FIBRE = "kpi.fibre-household-coverage"  # mic: the latest value is 200 days old: stale
# npa: blocked: off track (overdue once its deadline, 2027-03-31, has passed)
LOST_PROPERTY = "ms.lost-property-system-all"
QUANTUM = "ms.fault-tolerant-quantum-computer"  # mext: expected after its 2050 deadline: at risk
EMAFF = "kpi.emaff-online-usage-rate"  # maff: its deadline passed below target: overdue
OWNERS = {FIVE_G: "mic", FIBRE: "mic", LOST_PROPERTY: "npa", QUANTUM: "mext", EMAFF: "maff"}
# Bounded waits (the machine is shared): Prometheus scrapes every 5 s and evaluates rules every 5 s.
WAIT_S = 120.0


@dataclass
class Fed:
    services: dict[str, RunningService]
    deployment: str
    prometheus: str
    receiver: WebhookReceiver


def cloudevent(subject: str, event_type: str, data: dict[str, Any]) -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "id": secrets.token_hex(8),
        "source": f"/ministries/{OWNERS[subject]}",
        "type": event_type,
        "subject": subject,
        "time": datetime.now(UTC).isoformat(),
        "data": data,
    }


def observed(kpi_id: str, value: float, days_ago: int) -> dict[str, Any]:
    as_of = (date.today() - timedelta(days=days_ago)).isoformat()
    return cloudevent(
        kpi_id, "shinchoku.kpi.observed.v1", {"kpi_id": kpi_id, "value": value, "as_of": as_of}
    )


def reported(milestone_id: str, state: str, percent: float, expected: str | None) -> dict[str, Any]:
    data = {
        "milestone_id": milestone_id,
        "state": state,
        "percent_complete": percent,
        "expected_completion": expected,
        "as_of": date.today().isoformat(),
    }
    return cloudevent(milestone_id, "shinchoku.milestone.reported.v1", data)


async def post(
    http: httpx.AsyncClient, ingest: RunningService, event: dict[str, Any], key: str
) -> httpx.Response:
    return await http.post(
        f"{ingest.url}/v1/events",
        content=json.dumps(event),
        headers={"content-type": "application/cloudevents+json", **bearer(key)},
    )


async def status_becomes(
    http: httpx.AsyncClient, kpi: RunningService, subject: str, expected: set[str]
) -> None:
    deadline = time.monotonic() + WAIT_S
    status = None
    while time.monotonic() < deadline:
        answer = await http.get(f"{kpi.url}/v1/kpis/{subject}")
        status = answer.json().get("status") if answer.status_code == 200 else answer.text
        if status in expected:
            return
        await asyncio.sleep(0.3)
    raise AssertionError(f"{subject} stayed {status!r}, expected {expected}")


async def metric_reaches(service: RunningService, line_start: str, value: float) -> None:
    """Until the service's own /metrics shows a sample starting `line_start` at >= `value`."""
    deadline = time.monotonic() + WAIT_S
    async with httpx.AsyncClient(timeout=10) as http:
        while time.monotonic() < deadline:
            text = (await http.get(f"{service.url}/metrics")).text
            for line in text.splitlines():
                if line.startswith(line_start) and float(line.rsplit(" ", 1)[1]) >= value:
                    return
            await asyncio.sleep(0.3)
    raise AssertionError(f"{service.name}: no {line_start} >= {value}")


async def feed(
    services: dict[str, RunningService],
    mongo: MongoClient,
    database: str,
    admin_token: str,
    receiver: WebhookReceiver,
    kafka: KafkaSettings,
    topics: TopicSettings,
) -> None:
    """A small realistic stream through ingest, one status change at a time."""
    ingest, kpi, alerts = services["ingest"], services["kpi"], services["alerts"]
    keys = {
        ministry: await create_key(mongo, database, ministry) for ministry in {*OWNERS.values()}
    }
    async with httpx.AsyncClient(timeout=20) as http:
        created = await http.post(
            f"{alerts.url}/v1/subscriptions",
            headers={"Authorization": f"Bearer {admin_token}"},
            json={
                "url": receiver.url,
                "filter": {
                    "kpis": list(OWNERS),
                    "kinds": ["slipped", "recovered", "overdue", "stale"],
                },
            },
        )
        assert created.status_code == 201, created.text
        receiver.fail_next = 1  # the first delivery fails once, then is retried

        steps: list[tuple[dict[str, Any], set[str]]] = [
            (observed(FIVE_G, 97.5, 70), {"on_track"}),
            (observed(FIVE_G, 88.0, 60), {"at_risk"}),
            (observed(FIVE_G, 75.0, 50), {"off_track"}),
            (observed(FIVE_G, 98.0, 30), {"on_track"}),
            (observed(FIBRE, 95.0, 200), {"stale"}),
            (reported(LOST_PROPERTY, "blocked", 20, None), {"off_track", "overdue"}),
            (reported(QUANTUM, "in_progress", 5, "2052-03-31"), {"at_risk"}),
            (observed(EMAFF, 40.0, 0), {"overdue"}),
        ]
        for event, expected in steps:
            answer = await post(http, ingest, event, keys[OWNERS[event["subject"]]])
            assert answer.status_code == 202, answer.text
            await status_becomes(http, kpi, event["subject"], expected)

        malformed = observed(FIBRE, 96.0, 0)
        del malformed["data"]["value"]
        answer = await post(http, ingest, malformed, keys["mic"])
        assert 400 <= answer.status_code < 500, answer.text
        answer = await post(http, ingest, observed(FIBRE, 96.0, 0), "shk_unknown.key")
        assert answer.status_code == 401, answer.text

    producer = AIOKafkaProducer(**client_options(kafka))
    await producer.start()
    try:
        await producer.send_and_wait(topics.events, value=b"{not json", key=b"feed")
    finally:
        await producer.stop()
    await metric_reaches(
        kpi, 'shinchoku_consumer_dead_letters_total{reason="invalid_json",service="kpi"}', 1
    )
    await receiver.wait_for(1, timeout_s=WAIT_S)
    assert receiver.attempts[0].status_code == 503
    await metric_reaches(alerts, "shinchoku_alerts_delivery_latency_seconds_count", 1)


async def load_feed_catalogue(mongo: MongoClient, database: str) -> None:
    """The feed's catalogue entries and their measures, as `shinchoku catalogue load` writes
    them (the whole catalogue takes FerretDB some 20 s to load)."""
    catalogue = load_catalogue().show_json()
    entries = [
        {**e, "_id": e["id"], "state": "active"} for e in catalogue["kpis"] if e["id"] in OWNERS
    ]
    assert {e["id"] for e in entries} == set(OWNERS)
    store = CatalogueStore(mongo, database)
    for entry in entries:
        await store.upsert_item(entry)
    measures = {e["measure_id"] for e in entries}
    for measure in catalogue["measures"]:
        if measure["id"] in measures:
            document = {**measure, "_id": measure["id"], "state": "active"}
            await mongo[database][MEASURES].replace_one(
                {"_id": measure["id"]}, document, upsert=True
            )


@pytest.fixture(scope="module")
async def fed(
    endpoints: StackEndpoints,
    kafka: KafkaSettings,
    mongo: MongoClient,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[Fed]:
    run = random_suffix()
    topics = isolated_topics(f"dash{run}")
    await ensure_topics(kafka, topics)
    database = f"test_dash_{run}"
    await load_feed_catalogue(mongo, database)
    targets = local_targets_dir(endpoints.prometheus)
    admin_token = secrets.token_urlsafe(16)
    envs = {
        name: service_environment(
            name, endpoints=endpoints, topics=topics, database=database, admin_token=admin_token
        )
        for name in SERVICES
    }
    deployment = f"test-{run}"
    try:
        with (
            running_services(envs, tmp_path_factory.mktemp("dashboard-services")) as services,
            scraped(targets, services, deployment),
        ):
            # Scraped before the feed, so counters are seen at zero before they move.
            await wait_for_targets(endpoints.prometheus, deployment, 3, WAIT_S)
            async with webhook_receiver() as receiver:
                await feed(services, mongo, database, admin_token, receiver, kafka, topics)
                yield Fed(services, deployment, endpoints.prometheus, receiver)
    finally:
        await mongo.drop_database(database)


async def test_every_service_metrics_endpoint_passes_promtool_check_metrics(fed: Fed) -> None:
    """After the feed, `promtool check metrics` prints nothing for any service's live /metrics,
    and each declares every metric its Metrics.create() registers (and nothing else)."""
    tool = shutil.which("promtool")
    if tool is None:
        pytest.fail("promtool is missing: `make test` installs Debian's prometheus package")
    async with httpx.AsyncClient(timeout=10) as http:
        for name, service in fed.services.items():
            exposition = (await http.get(f"{service.url}/metrics")).content
            checker = await asyncio.create_subprocess_exec(
                tool,
                "check",
                "metrics",
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
            )
            async with asyncio.timeout(60):
                output, _ = await checker.communicate(exposition)
            assert checker.returncode == 0, (name, output.decode())
            assert not output.strip(), (name, output.decode())
            declared = {
                line.split()[2]: line.split()[3]
                for line in exposition.decode().splitlines()
                if line.startswith("# TYPE ")
            }
            assert declared == family_names(name), name


async def test_every_dashboard_query_answers_with_data_for_this_deployment(fed: Fed) -> None:
    """Every panel query of both dashboards, and every template variable's selector, with the
    variables filled in for this test's deployment, answers without error and (but for the few
    the generator names, with a reason) with at least one series."""
    values = grafana_values(fed.deployment)
    pending: dict[str, str] = {}
    for dashboard, panel, item in dashboard_queries():
        expr = substitute(item.expr, values)
        if item.may_be_empty is None:
            pending[expr] = f"{dashboard} / {panel}"
        else:
            await query(fed.prometheus, expr)  # an error fails the test; empty is fine
    for dashboard in generator().DASHBOARD_SET:
        for variable in dashboard.variables:
            pending[substitute(variable.selector, values)] = f"{dashboard.title} ${variable.name}"
    deadline = time.monotonic() + WAIT_S
    while pending and time.monotonic() < deadline:
        for expr in list(pending):
            if await query(fed.prometheus, expr):
                del pending[expr]
        if pending:
            await asyncio.sleep(2.0)
    assert not pending, "no data:\n" + "\n".join(f"{w}: {e}" for e, w in pending.items())


async def eventually(prometheus: str, expr: str, check: Any, what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    result: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        result = await query(prometheus, expr)
        if check(result):
            return
        await asyncio.sleep(2.0)
    raise AssertionError(f"{what}: {expr} -> {result}")


def by_label(result: list[dict[str, Any]], label: str) -> dict[str, float]:
    return {sample["metric"].get(label, ""): float(sample["value"][1]) for sample in result}


def positive(label: str, value: str) -> Callable[[list[dict[str, Any]]], bool]:
    """The series whose `label` is `value` (both empty for an aggregate) is above zero."""
    return lambda result: by_label(result, label).get(value, 0) > 0


def panel_query(fed: Fed, title: str, index: int = 0) -> str:
    """A panel's query as Grafana would send it, over windows long enough to hold the feed."""
    queries = [query for _, panel, query in dashboard_queries() if panel == title]
    values = {**grafana_values(fed.deployment), "$__rate_interval": "30m", "$__range": "1h"}
    return substitute(queries[index].expr, values)


async def test_the_panels_show_what_the_feed_did(fed: Fed) -> None:
    """Stale reporting names mic; the off-track table names npa (a blocked milestone) and maff
    (an overdue KPI); mic's slips and its recovery are counted (the first of a series too); the
    pipeline panels count the unknown key, the dead letter and the failed webhook attempt."""
    checks = [
        ("Stale reporting by ministry", 0, positive("ministry", "mic")),
        (
            "Off track now, by ministry and kind",
            0,
            lambda r: {"npa", "maff"} <= {s["metric"]["ministry"] for s in r},
        ),
        ("Slips by ministry", 0, positive("ministry", "mic")),
        ("Recoveries by ministry", 0, positive("ministry", "mic")),
        ("Recoveries in range", 0, positive("", "")),
        ("Services up", 0, lambda r: len(r) == 3 and all(s["value"][1] == "1" for s in r)),
        ("Rejections by reason", 1, lambda r: sum(by_label(r, "reason").values()) > 0),
        ("Dead letters in range", 0, positive("service", "kpi")),
        ("Webhook attempts by result", 0, positive("result", "http_error")),
        ("Webhook attempts by result", 0, positive("result", "success")),
    ]
    for title, index, check in checks:
        await eventually(fed.prometheus, panel_query(fed, title, index), check, title)
    # The validation rejection, straight from the counter (its rate panel starts at its 2nd).
    await eventually(
        fed.prometheus,
        f'sum(shinchoku_ingest_events_total{{deployment="{fed.deployment}", outcome="rejected"}})',
        positive("", ""),
        "rejected events",
    )


async def test_every_rule_is_loaded_and_evaluates_without_error(fed: Fed) -> None:
    """The local Prometheus has loaded every recording and alerting rule in deploy/prometheus/
    rules, and none reports an evaluation error."""
    expected = set(recording_rules()) | set(alerting_rules())
    deadline = time.monotonic() + WAIT_S
    while True:
        async with httpx.AsyncClient(timeout=10) as http:
            groups = (await http.get(f"{fed.prometheus}/api/v1/rules")).json()["data"]["groups"]
        ours = [
            rule
            for group in groups
            if str(PROMETHEUS / "rules") in group["file"]
            for rule in group["rules"]
        ]
        if {rule["name"] for rule in ours} >= expected and all(
            rule["health"] == "ok" for rule in ours
        ):
            break
        errors = [(r["name"], r.get("lastError")) for r in ours if r["health"] == "err"]
        assert not errors, errors
        assert time.monotonic() < deadline, [(r["name"], r["health"]) for r in ours]
        await asyncio.sleep(2.0)

"""The alerts API on the real app (lifespan with real Kafka and FerretDB): admin-only access,
the subscription lifecycle, the SSRF guard at creation, silences, the delivery log."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from services.alerts.bootstrap import create_app
from services.alerts.settings import AlertsSettings
from shared.mongo import MongoClient
from shared.settings import KafkaSettings, MongoSettings, TopicSettings
from tests.support.webhooks import webhook_receiver

pytestmark = pytest.mark.integration
TOKEN = "alerts-api-" + secrets.token_hex(4)
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
async def api(
    kafka: KafkaSettings, topics: TopicSettings, mongo: MongoClient, mongo_config: MongoSettings
) -> AsyncIterator[httpx.AsyncClient]:
    database = f"{mongo_config.database}_alapi_{secrets.token_hex(3)}"
    settings = AlertsSettings(
        kafka=kafka,
        topics=topics,
        mongo=MongoSettings(url=mongo_config.url, database=database),
        admin_token=TOKEN,
        consumer_group=f"alerts-api-{database}",
        allowed_target_networks=["127.0.0.1/32"],
        log_json=True,
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://alerts") as client:
            await wait_ready(client)
            yield client
    await mongo.drop_database(database)


async def wait_ready(client: httpx.AsyncClient, timeout_s: float = 60) -> None:
    """Bounded wait for /readyz (the consumer has joined its group)."""
    async with asyncio.timeout(timeout_s):
        while (await client.get("/readyz")).status_code != 200:  # noqa: ASYNC110 - polling HTTP
            await asyncio.sleep(0.2)


async def test_every_v1_route_needs_the_admin_token(api: httpx.AsyncClient) -> None:
    """No /v1 route answers without the bearer token or with a wrong one (401 problem)."""
    spec = (await api.get("/openapi.json")).json()
    operations = [
        (method.upper(), path)
        for path, item in spec["paths"].items()
        if path.startswith("/v1")
        for method in item
    ]
    assert len(operations) >= 18
    for method, template in operations:
        path = template.replace("{subscription_id}", "sub_x").replace("{silence_id}", "sil_x")
        path = path.replace("{message_id}", "msg_x")
        for headers in ({}, {"Authorization": "Bearer wrong"}):
            answer = await api.request(method, path, headers=headers, json={})
            assert answer.status_code == 401, (method, path, answer.text)
            assert answer.headers["content-type"] == "application/problem+json"


async def test_subscription_lifecycle(api: httpx.AsyncClient) -> None:
    """Create (secret once), list, get, update, pause, resume, rotate, delete."""
    async with webhook_receiver() as receiver:
        created = await api.post(
            "/v1/subscriptions",
            headers=AUTH,
            json={
                "url": receiver.url,
                "filter": {"ministries": ["mic"], "kinds": ["slipped", "recovered"]},
                "description": "PMO",
            },
        )
        assert created.status_code == 201, created.text
        body = created.json()
        sub = body["id"]
        assert body["secret"].startswith("whsec_")
        assert body["state"] == "active"
        assert body["filter"]["kinds"] == ["slipped", "recovered"]

        got = (await api.get(f"/v1/subscriptions/{sub}", headers=AUTH)).json()
        assert "secret" not in got
        assert body["secret"] not in (await api.get("/v1/subscriptions", headers=AUTH)).text
        assert [
            s["id"] for s in (await api.get("/v1/subscriptions", headers=AUTH)).json()["items"]
        ] == [sub]

        patched = await api.patch(
            f"/v1/subscriptions/{sub}",
            headers=AUTH,
            json={"filter": {"kpis": ["kpi.x"], "min_severity": "off_track"}},
        )
        assert patched.status_code == 200, patched.text
        assert patched.json()["filter"]["kpis"] == ["kpi.x"]
        assert patched.json()["description"] == "PMO"

        refused = await api.patch(
            f"/v1/subscriptions/{sub}", headers=AUTH, json={"url": "http://10.0.0.8/hook"}
        )
        assert refused.status_code == 422
        assert refused.json()["code"] == "ssrf_refused"

        paused = await api.post(f"/v1/subscriptions/{sub}/pause", headers=AUTH)
        assert paused.json()["state"] == "paused"
        listed = await api.get("/v1/subscriptions", headers=AUTH, params={"state": "paused"})
        assert [s["id"] for s in listed.json()["items"]] == [sub]
        resumed = await api.post(f"/v1/subscriptions/{sub}/resume", headers=AUTH)
        assert resumed.json()["state"] == "active"

        rotated = await api.post(
            f"/v1/subscriptions/{sub}/rotate-secret", headers=AUTH, json={"overlap_s": 3600}
        )
        assert rotated.status_code == 200, rotated.text
        new_secret = rotated.json()["secret"]
        assert new_secret.startswith("whsec_")
        assert new_secret != body["secret"]
        expiries = [s["expires_at"] for s in rotated.json()["secrets"]]
        assert expiries[-1] is None
        assert expiries[0] is not None

        for path in ("attempts", "deliveries", "notifications"):
            listed = await api.get(f"/v1/subscriptions/{sub}/{path}", headers=AUTH)
            assert listed.status_code == 200
            assert listed.json()["items"] == []
        missing = await api.post(
            f"/v1/subscriptions/{sub}/deliveries/msg_nope/redeliver", headers=AUTH
        )
        assert missing.status_code == 404
        now = datetime.now(UTC)
        backwards = await api.post(
            f"/v1/subscriptions/{sub}/redeliver-failed",
            headers=AUTH,
            json={"since": now.isoformat(), "until": (now - timedelta(hours=1)).isoformat()},
        )
        assert backwards.status_code == 422
        none_failed = await api.post(
            f"/v1/subscriptions/{sub}/redeliver-failed",
            headers=AUTH,
            json={"since": (now - timedelta(days=1)).isoformat(), "until": now.isoformat()},
        )
        assert none_failed.json() == {"queued": 0}

        assert (await api.delete(f"/v1/subscriptions/{sub}", headers=AUTH)).status_code == 204
        gone = await api.get(f"/v1/subscriptions/{sub}", headers=AUTH)
        assert gone.status_code == 404
        assert gone.headers["content-type"] == "application/problem+json"


async def test_internal_targets_are_refused_at_creation(api: httpx.AsyncClient) -> None:
    """Targets resolving to private, metadata or loopback addresses (other than the allowed
    127.0.0.1) are refused with a 422 problem naming the reason; nothing is stored."""
    for url, reason in [
        ("http://10.1.2.3/hook", "private"),
        ("http://192.168.0.10:8080/hook", "private"),
        ("http://169.254.169.254/latest/meta-data", "metadata"),
        ("http://[::1]:9000/hook", "loopback"),
        ("http://127.0.0.2/hook", "loopback"),
        ("http://no-such-host.invalid/hook", "does not resolve"),
    ]:
        answer = await api.post("/v1/subscriptions", headers=AUTH, json={"url": url})
        assert answer.status_code == 422, answer.text
        problem = answer.json()
        assert problem["code"] == "ssrf_refused"
        assert reason in problem["detail"], (url, problem["detail"])
    listed = await api.get("/v1/subscriptions", headers=AUTH)
    assert listed.json()["items"] == []


async def test_silences_are_created_listed_and_ended(api: httpx.AsyncClient) -> None:
    """Time-bounded and quiet-hours silences are created; invalid ones refused; ending one
    keeps it as history."""
    now = datetime.now(UTC)
    bounded = await api.post(
        "/v1/silences",
        headers=AUTH,
        json={
            "scope": {"ministries": ["mic"]},
            "ends_at": (now + timedelta(hours=1)).isoformat(),
            "reason": "maintenance",
        },
    )
    assert bounded.status_code == 201, bounded.text
    nightly = await api.post(
        "/v1/silences",
        headers=AUTH,
        json={"scope": {"kpis": ["kpi.x"]}, "quiet_hours": {"start": "22:00", "end": "07:00"}},
    )
    assert nightly.status_code == 201, nightly.text
    assert nightly.json()["quiet_hours"]["weekdays"] == [0, 1, 2, 3, 4, 5, 6]

    for invalid in (
        {"scope": {"kpis": ["kpi.x"]}},
        {"ends_at": (now - timedelta(hours=1)).isoformat()},
        {"quiet_hours": {"start": "22:00", "end": "22:00"}},
        {"ends_at": "2026-01-01T00:00:00"},
        {
            "scope": {"subscription_id": "sub_missing"},
            "ends_at": (now + timedelta(hours=1)).isoformat(),
        },
    ):
        answer = await api.post("/v1/silences", headers=AUTH, json=invalid)
        assert answer.status_code in (404, 422), (invalid, answer.text)

    listed = await api.get("/v1/silences", headers=AUTH)
    assert {s["id"] for s in listed.json()["items"]} == {bounded.json()["id"], nightly.json()["id"]}
    ended = await api.delete(f"/v1/silences/{bounded.json()['id']}", headers=AUTH)
    assert ended.status_code == 200
    assert ended.json()["ended_early_at"] is not None
    listed = await api.get("/v1/silences", headers=AUTH)
    assert [s["id"] for s in listed.json()["items"]] == [nightly.json()["id"]]
    history = await api.get("/v1/silences", headers=AUTH, params={"include_ended": True})
    assert len(history.json()["items"]) == 2
    assert (await api.get("/v1/silences/sil_nope", headers=AUTH)).status_code == 404


async def test_openapi_documents_the_webhook_and_security(api: httpx.AsyncClient) -> None:
    """The OpenAPI document describes the webhook payload and bearer security on /v1."""
    spec = (await api.get("/openapi.json")).json()
    hook = spec["webhooks"]["kpi-status"]["post"]
    assert "webhook-signature" in hook["description"]
    for path, operations in spec["paths"].items():
        if path.startswith("/v1"):
            for operation in operations.values():
                assert operation.get("security"), path


async def test_metrics_are_exposed(api: httpx.AsyncClient) -> None:
    """The metrics the issue lists are on /metrics."""
    text = (await api.get("/metrics")).text
    for name in (
        "shinchoku_alerts_notifications_total",
        "shinchoku_alerts_delivery_attempts_total",
        "shinchoku_alerts_delivery_latency_seconds",
        "shinchoku_alerts_deliveries",
        "shinchoku_alerts_disabled_endpoints",
    ):
        assert name in text


async def test_collections_page_by_offset_with_a_total_and_streams_by_cursor(
    api: httpx.AsyncClient,
) -> None:
    """Silences (a collection) come in offset pages with the total over all pages; operator
    events (a stream) in cursor pages with `next_after`, null at the end, and a cursor not
    given out by the service is a 422 problem."""
    ends = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    for i in range(3):
        created = await api.post(
            "/v1/silences", headers=AUTH, json={"ends_at": ends, "reason": f"page {i}"}
        )
        assert created.status_code == 201, created.text
    first = (await api.get("/v1/silences", headers=AUTH, params={"limit": 2})).json()
    second = (await api.get("/v1/silences", headers=AUTH, params={"limit": 2, "offset": 2})).json()
    assert (first["total"], first["limit"], first["offset"]) == (3, 2, 0)
    assert (second["total"], second["offset"], len(second["items"])) == (3, 2, 1)
    ids = [s["id"] for s in first["items"] + second["items"]]
    assert len(set(ids)) == 3
    subscriptions = (await api.get("/v1/subscriptions", headers=AUTH)).json()
    assert subscriptions["total"] == len(subscriptions["items"])

    events = (await api.get("/v1/operator-events", headers=AUTH)).json()
    assert events == {"items": [], "next_after": None}
    bad = await api.get("/v1/operator-events", headers=AUTH, params={"after": "not-a-cursor"})
    assert bad.status_code == 422
    assert bad.json()["code"] == "invalid_cursor"

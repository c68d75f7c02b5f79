"""Hostile input: no secret reaches the logs. The three services run as real processes (DEBUG
logging, their own topics and database); the test creates and revokes API keys, posts events,
fails authentication in every way, creates a subscription and rotates its signing secret, and
has a webhook delivered after a failed attempt. Then every line the services wrote is searched
for the API keys and their secrets, the admin token, the webhook signing secrets and the
Authorization header values. The logs must also show each of those actions, so the search is
not over nothing."""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from standardwebhooks.webhooks import Webhook

from harness.services import RunningService, running_services, service_environment, stop_service
from harness.stack import StackEndpoints
from harness.webhooks import webhook_receiver
from shared.catalogue_store import CatalogueStore
from shared.kafka import ensure_topics
from shared.mongo import MongoClient
from shared.settings import KafkaSettings, MongoSettings
from tests.support.stack import isolated_topics, random_suffix

pytestmark = pytest.mark.e2e

ADMIN_TOKEN = secrets.token_urlsafe(24)
MINISTRY = "mic"
STRUCTURED = {"content-type": "application/cloudevents+json"}


@pytest.fixture(scope="module")
def database(mongo_config: MongoSettings) -> str:
    return f"{mongo_config.database}_hostlogs_{secrets.token_hex(3)}"


@pytest.fixture(scope="module")
def services(
    endpoints: StackEndpoints,
    kafka: KafkaSettings,
    database: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[dict[str, RunningService]]:
    """The three services at DEBUG level on this module's own topics and database."""
    topics = isolated_topics(f"hostile-logs-{random_suffix()}", partitions=1)
    asyncio.run(ensure_topics(kafka, topics))
    log_dir: Path = tmp_path_factory.mktemp("hostile-logs")
    envs = {
        name: service_environment(
            name,
            endpoints=endpoints,
            topics=topics,
            database=database,
            admin_token=ADMIN_TOKEN,
            extra={f"SHINCHOKU_{name.upper()}_LOG_LEVEL": "DEBUG"},
        )
        for name in ("ingest", "kpi", "alerts")
    }
    with running_services(envs, log_dir) as running:
        yield running


async def new_kpi(mongo: MongoClient, database: str) -> str:
    """A KPI of MINISTRY: 50 % in March 2022 rising to 100 % by March 2030."""
    kpi_id = f"kpi.hostile-logs-{secrets.token_hex(4)}"
    await CatalogueStore(mongo, database).upsert_item(
        {
            "_id": kpi_id,
            "id": kpi_id,
            "kind": "kpi",
            "measure_id": "m.hostile",
            "name_ja": "試験指標",
            "name_en": "Hostile logs indicator",
            "unit": "%",
            "direction": "increase",
            "ministries": [MINISTRY],
            "baseline": {"value": 50.0, "as_of": "2022-03-31"},
            "targets": [{"value": 100.0, "deadline": "2030-03-31", "deadline_text": "2029年度末"}],
            "state": "active",
        }
    )
    return kpi_id


def observation(kpi_id: str, value: float, ministry: str = MINISTRY) -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "id": secrets.token_hex(8),
        "source": f"/ministries/{ministry}",
        "type": "shinchoku.kpi.observed.v1",
        "subject": kpi_id,
        "time": datetime.now(UTC).isoformat(),
        "datacontenttype": "application/json",
        "data": {"kpi_id": kpi_id, "value": value, "as_of": date.today().isoformat()},
    }


def bearer(value: str) -> dict[str, str]:
    return {"authorization": f"Bearer {value}"}


def key_secret(key: str) -> str:
    """The secret part of `shk_<12 hex key id>_<secret>` (the secret may contain `_`)."""
    return key[17:]


def log_lines(service: RunningService) -> list[dict[str, Any]]:
    """The service's JSON log lines (anything else it printed is kept as {'raw': line})."""
    lines = []
    for line in service.log_path.read_text(errors="replace").splitlines():
        try:
            parsed = json.loads(line)
        except ValueError:
            parsed = {"raw": line}
        lines.append(parsed if isinstance(parsed, dict) else {"raw": line})
    return lines


def logged(lines: list[dict[str, Any]], event: str, **fields: Any) -> bool:
    return any(
        line.get("event") == event and all(line.get(k) == v for k, v in fields.items())
        for line in lines
    )


async def test_no_key_token_or_signing_secret_reaches_the_logs(
    services: dict[str, RunningService],
    mongo: MongoClient,
    database: str,
    endpoints: StackEndpoints,
) -> None:
    """After keys are created and revoked, events posted, authentication failed with wrong
    secrets, revoked keys and wrong tokens, a subscription created and its secret rotated and a
    webhook delivered after a retry, no service log holds any API key or its secret, the admin
    token, a whsec_ signing secret, an Authorization header value or a service's Kafka password,
    while the logs do record each of those actions; nor does any service's /metrics."""
    ingest, kpi, alerts = (services[name].url for name in ("ingest", "kpi", "alerts"))
    kpi_id = await new_kpi(mongo, database)
    admin = bearer(ADMIN_TOKEN)
    async with webhook_receiver() as receiver, httpx.AsyncClient(timeout=30) as http:
        # Keys: one used, one revoked, through the admin API.
        created = {}
        for role in ("used", "revoked"):
            answer = await http.post(
                f"{ingest}/v1/admin/keys", headers=admin, json={"ministry": MINISTRY}
            )
            assert answer.status_code == 201, answer.text
            created[role] = answer.json()
        key, key_id = created["used"]["key"], created["used"]["key_id"]
        revoked, revoked_id = created["revoked"]["key"], created["revoked"]["key_id"]
        answer = await http.delete(f"{ingest}/v1/admin/keys/{revoked_id}", headers=admin)
        assert answer.status_code == 200, answer.text
        wrong_secret = f"shk_{key_id}_{secrets.token_urlsafe(32)}"

        # A subscription (the receiver fails the first attempt) and a rotated secret.
        answer = await http.post(
            f"{alerts}/v1/subscriptions",
            headers=admin,
            json={"url": receiver.url, "filter": {"kpis": [kpi_id]}},
        )
        assert answer.status_code == 201, answer.text
        subscription, first_secret = answer.json()["id"], answer.json()["secret"]
        answer = await http.post(
            f"{alerts}/v1/subscriptions/{subscription}/rotate-secret",
            headers=admin,
            json={"overlap_s": 3600},
        )
        assert answer.status_code == 200, answer.text
        second_secret = answer.json()["secret"]
        receiver.fail_next = 1

        # Failed authentication of every kind.
        event = observation(kpi_id, 40.0)
        for headers in (bearer(wrong_secret), bearer(revoked), bearer(ADMIN_TOKEN), {}):
            answer = await http.post(
                f"{ingest}/v1/events", content=json.dumps(event), headers={**STRUCTURED, **headers}
            )
            assert answer.status_code == 401, answer.text
        for url in (f"{ingest}/v1/admin/keys", f"{alerts}/v1/subscriptions"):
            for headers in (bearer(key), bearer(ADMIN_TOKEN + "x")):
                assert (await http.get(url, headers=headers)).status_code == 401
        # Credentials where they are not needed (the kpi API is public), even in the query.
        answer = await http.get(f"{kpi}/v1/kpis", headers=bearer(key), params={"api_key": key})
        assert answer.status_code == 200, answer.text

        # Another ministry's source (403), then the slip itself (202).
        foreign = observation(kpi_id, 40.0, ministry="digital")
        answer = await http.post(
            f"{ingest}/v1/events",
            content=json.dumps(foreign),
            headers={**STRUCTURED, **bearer(key)},
        )
        assert answer.status_code == 403, answer.text
        answer = await http.post(
            f"{ingest}/v1/events", content=json.dumps(event), headers={**STRUCTURED, **bearer(key)}
        )
        assert answer.status_code == 202, answer.text

        # The webhook, after one failed attempt, signed with both secrets.
        (webhook,) = await receiver.wait_for(1, timeout_s=90)
        assert len(receiver.attempts) == 2
        for secret in (first_secret, second_secret):
            assert Webhook(secret).verify(webhook.body, webhook.headers)["data"]["kpi_id"] == kpi_id

        # alerts logs the attempt after the receiver answered it: wait for the line before
        # stopping the service (a stop in between would lose it).
        async with asyncio.timeout(30):
            while not logged(  # noqa: ASYNC110 - polling a file another process writes
                log_lines(services["alerts"]),
                "webhook_attempt",
                subscription_id=subscription,
                status_code=204,
            ):
                await asyncio.sleep(0.2)

    # What each service exposes to Prometheus, read while it runs.
    async with httpx.AsyncClient(timeout=30) as http:
        metrics = {name: (await http.get(f"{s.url}/metrics")).text for name, s in services.items()}

    for service in services.values():
        stop_service(service)  # flushes and closes the logs
    logs = {name: log_lines(service) for name, service in services.items()}
    text = {
        name: service.log_path.read_text(errors="replace") for name, service in services.items()
    }

    # The logs are not empty, and they record what was done.
    for name, lines in logs.items():
        assert len(lines) >= 5, (name, text[name])
    ingest_log, kpi_log, alerts_log = logs["ingest"], logs["kpi"], logs["alerts"]
    assert logged(ingest_log, "api_key_created", key_id=key_id, ministry=MINISTRY)
    assert logged(ingest_log, "api_key_created", key_id=revoked_id)
    assert logged(ingest_log, "api_key_revoked", key_id=revoked_id)
    assert logged(ingest_log, "auth_failed", reason="unknown", key_id=key_id)
    assert logged(ingest_log, "auth_failed", reason="revoked", key_id=revoked_id)
    assert logged(ingest_log, "auth_failed", reason="malformed")
    assert logged(ingest_log, "auth_failed", scope="admin", reason="invalid")
    assert logged(ingest_log, "event_refused", key_id=key_id, reason="source_not_key_ministry")
    assert event["id"] in text["ingest"] or event["id"] in text["kpi"]
    assert logged(kpi_log, "status_changed", kpi_id=kpi_id, status="off_track")
    assert logged(alerts_log, "subscription_created", subscription_id=subscription)
    assert logged(alerts_log, "signing_secret_rotated", subscription_id=subscription)
    assert logged(alerts_log, "auth_failed", scope="admin", reason="invalid")
    assert logged(alerts_log, "webhook_attempt", subscription_id=subscription, status_code=503)
    assert logged(alerts_log, "webhook_attempt", subscription_id=subscription, status_code=204)

    # ... and hold none of the secrets, in any form.
    forbidden = {
        "admin token": ADMIN_TOKEN,
        "API key": key,
        "API key secret": key_secret(key),
        "revoked key": revoked,
        "revoked key secret": key_secret(revoked),
        "wrong-secret key": wrong_secret,
        "wrong secret": key_secret(wrong_secret),
        "signing secret": first_secret,
        "signing key": first_secret.removeprefix("whsec_"),
        "rotated signing secret": second_secret,
        "rotated signing key": second_secret.removeprefix("whsec_"),
    }
    for value in list(forbidden.values()):
        forbidden[f"Authorization: Bearer {value[:8]}…"] = f"Bearer {value}"
    for user in ("ingest", "kpi", "alerts"):
        password = endpoints.kafka_as(user).password
        assert password is not None, "the stack's Kafka gave no credentials (run `make test`)"
        forbidden[f"{user}'s Kafka password"] = password.get_secret_value()
    for name, exposition in metrics.items():
        assert "# TYPE" in exposition, (name, exposition[:200])
        for what, value in forbidden.items():
            assert value not in exposition, f"the {what} appears in the {name} /metrics"
    for name, log_text in text.items():
        for what, value in forbidden.items():
            assert value not in log_text, f"the {what} appears in the {name} log"
        assert "whsec_" not in log_text, f"a signing secret appears in the {name} log"
        assert "shk_" not in log_text, f"an API key appears in the {name} log"

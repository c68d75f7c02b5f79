"""Alerts on the real stack: ingest → kpi → status topic → alerts → a real receiver."""

from __future__ import annotations

import asyncio
import json
import secrets
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest
from standardwebhooks.webhooks import Webhook

from harness.services import RunningService, service_database, upsert_catalogue_item
from harness.webhooks import webhook_receiver
from services.ingest.adapters.keys import ApiKeyStore
from shared.catalogue_store import MEASURES
from shared.mongo import MongoClient
from shared.settings import CATALOGUE_READERS, MongoSettings
from tests.support.faults import eventually

pytestmark = pytest.mark.e2e


async def new_kpi(mongo: MongoClient, mongo_config: MongoSettings, measure: str = "m.e2e") -> str:
    """A KPI in the catalogue: 50 % in March 2022 rising to 100 % by March 2030."""
    kpi_id = f"kpi.alerts-{secrets.token_hex(4)}"
    await upsert_catalogue_item(
        mongo,
        mongo_config.database,
        {
            "_id": kpi_id,
            "id": kpi_id,
            "kind": "kpi",
            "measure_id": measure,
            "name_ja": "試験指標",
            "name_en": "Alerts test indicator",
            "unit": "%",
            "direction": "increase",
            "ministries": ["mic"],
            "baseline": {"value": 50.0, "as_of": "2022-03-31"},
            "targets": [{"value": 100.0, "deadline": "2030-03-31", "deadline_text": "2029年度末"}],
            "state": "active",
        },
    )
    return kpi_id


def observation(kpi_id: str, value: float) -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "id": secrets.token_hex(8),
        "source": "/ministries/mic",
        "type": "shinchoku.kpi.observed.v1",
        "subject": kpi_id,
        "time": datetime.now(UTC).isoformat(),
        "datacontenttype": "application/json",
        "data": {"kpi_id": kpi_id, "value": value, "as_of": date.today().isoformat()},
    }


async def ministry_key(mongo: MongoClient, mongo_config: MongoSettings) -> dict[str, str]:
    """An ingest API key for the ministry that owns the test KPIs."""
    database = service_database(mongo_config.database, "ingest")
    key, _ = await ApiKeyStore(mongo, database).create("mic", datetime.now(UTC), "alerts e2e")
    return {"authorization": f"Bearer {key}"}


async def post_slip(
    http: httpx.AsyncClient,
    system: dict[str, RunningService],
    key: dict[str, str],
    kpi_id: str,
) -> None:
    """An observation far behind the trajectory: the KPI goes off track."""
    answer = await http.post(
        f"{system['ingest'].url}/v1/events",
        content=json.dumps(observation(kpi_id, 40.0)),
        headers={"content-type": "application/cloudevents+json", **key},
    )
    assert answer.status_code == 202, answer.text


async def subscribe(
    http: httpx.AsyncClient, system: dict[str, RunningService], token: str, body: dict[str, Any]
) -> tuple[str, str]:
    created = await http.post(
        f"{system['alerts'].url}/v1/subscriptions",
        headers={"Authorization": f"Bearer {token}"},
        json=body,
    )
    assert created.status_code == 201, created.text
    return created.json()["id"], created.json()["secret"]


async def admin_get(
    http: httpx.AsyncClient, system: dict[str, RunningService], token: str, path: str
) -> Any:
    answer = await http.get(
        f"{system['alerts'].url}{path}", headers={"Authorization": f"Bearer {token}"}
    )
    assert answer.status_code == 200, answer.text
    return answer.json()


async def test_a_slip_posted_through_ingest_reaches_a_verifying_receiver(
    system: dict[str, RunningService],
    mongo: MongoClient,
    mongo_config: MongoSettings,
    admin_token: str,
) -> None:
    """The webhook verifies with the standardwebhooks library and carries the KPI, measure,
    ministries, statuses, explanation and a link; the delivery log records the attempt."""
    kpi_id = await new_kpi(mongo, mongo_config)
    async with webhook_receiver() as receiver, httpx.AsyncClient(timeout=20) as http:
        sub, secret = await subscribe(
            http, system, admin_token, {"url": receiver.url, "filter": {"kpis": [kpi_id]}}
        )
        await post_slip(http, system, await ministry_key(mongo, mongo_config), kpi_id)
        (webhook,) = await receiver.wait_for(1, timeout_s=60)
        body = Webhook(secret).verify(webhook.body, webhook.headers)
        assert body["type"] == "kpi.slipped"
        data = body["data"]
        assert (data["kpi_id"], data["measure_id"], data["ministries"]) == (
            kpi_id,
            "m.e2e",
            ["mic"],
        )
        assert data["status"] == "off_track"
        assert data["previous_status"] in {None, "no_data"}
        assert data["explanation"]["rule_id"]
        assert data["link"].endswith(f"/v1/kpis/{kpi_id}")
        assert data["episode_id"]
        assert [c["kpi_id"] for c in data["changes"]] == [kpi_id]

        async def logged() -> list[Any] | None:
            # The attempt is logged after the receiver answered: wait for the log too.
            log = await admin_get(http, system, admin_token, f"/v1/subscriptions/{sub}/attempts")
            return list(log["items"]) or None

        (attempt,) = await eventually(logged, timeout_s=30, what="the attempt logged")
        assert attempt["message_id"] == webhook.headers["webhook-id"]
        assert (attempt["status_code"], attempt["result"]) == (204, "success")


async def test_a_receiver_failing_three_times_gets_the_same_webhook_id(
    system: dict[str, RunningService],
    mongo: MongoClient,
    mongo_config: MongoSettings,
    admin_token: str,
) -> None:
    """Three 503s, then success: four attempts with one webhook-id, the last one verifies, and
    the delivery log lists all four."""
    kpi_id = await new_kpi(mongo, mongo_config)
    async with webhook_receiver() as receiver, httpx.AsyncClient(timeout=20) as http:
        sub, secret = await subscribe(
            http, system, admin_token, {"url": receiver.url, "filter": {"kpis": [kpi_id]}}
        )
        receiver.fail_next = 3
        await post_slip(http, system, await ministry_key(mongo, mongo_config), kpi_id)
        (webhook,) = await receiver.wait_for(1, timeout_s=90)
        assert [a.status_code for a in receiver.attempts] == [503, 503, 503, 204]
        assert {a.headers["webhook-id"] for a in receiver.attempts} == {
            webhook.headers["webhook-id"]
        }
        Webhook(secret).verify(webhook.body, webhook.headers)
        assert len({a.body for a in receiver.attempts}) == 1

        async def four_logged() -> list[Any] | None:
            # The attempt is logged after the receiver answered: wait for the log too.
            log = await admin_get(http, system, admin_token, f"/v1/subscriptions/{sub}/attempts")
            return [a["status_code"] for a in log["items"]] if len(log["items"]) == 4 else None

        logged = await eventually(four_logged, timeout_s=30, what="four attempts logged")
        assert logged == [204, 503, 503, 503]


async def test_a_silence_holds_a_notification_until_it_ends(
    system: dict[str, RunningService],
    mongo: MongoClient,
    mongo_config: MongoSettings,
    admin_token: str,
) -> None:
    """While a silence on the KPI is in force the slip is recorded as muted and not sent;
    ending the silence sends it."""
    kpi_id = await new_kpi(mongo, mongo_config)
    auth = {"Authorization": f"Bearer {admin_token}"}
    async with webhook_receiver() as receiver, httpx.AsyncClient(timeout=20) as http:
        sub, secret = await subscribe(
            http, system, admin_token, {"url": receiver.url, "filter": {"kpis": [kpi_id]}}
        )
        silence = await http.post(
            f"{system['alerts'].url}/v1/silences",
            headers=auth,
            json={
                "scope": {"kpis": [kpi_id]},
                "ends_at": (datetime.now(UTC) + timedelta(hours=1)).isoformat(),
                "reason": "e2e",
            },
        )
        assert silence.status_code == 201, silence.text
        await post_slip(http, system, await ministry_key(mongo, mongo_config), kpi_id)
        path = f"/v1/subscriptions/{sub}/notifications?state=muted"
        async with asyncio.timeout(60):
            while not (await admin_get(http, system, admin_token, path))["items"]:  # noqa: ASYNC110 - polling HTTP
                await asyncio.sleep(0.2)
        assert receiver.attempts == []
        ended = await http.delete(
            f"{system['alerts'].url}/v1/silences/{silence.json()['id']}", headers=auth
        )
        assert ended.status_code == 200
        (webhook,) = await receiver.wait_for(1, timeout_s=60)
        body = Webhook(secret).verify(webhook.body, webhook.headers)
        assert body["data"]["kpi_id"] == kpi_id


async def test_two_slips_within_the_window_arrive_as_one_delivery(
    system: dict[str, RunningService],
    mongo: MongoClient,
    mongo_config: MongoSettings,
    admin_token: str,
) -> None:
    """Two KPIs slipping in one ingest batch reach the subscriber as one webhook listing both
    (the test stack's grouping window is 2 s)."""
    measure = f"m.group-{secrets.token_hex(3)}"
    first = await new_kpi(mongo, mongo_config, measure)
    second = await new_kpi(mongo, mongo_config, measure)
    async with webhook_receiver() as receiver, httpx.AsyncClient(timeout=20) as http:
        sub, secret = await subscribe(
            http, system, admin_token, {"url": receiver.url, "filter": {"measures": [measure]}}
        )
        answer = await http.post(
            f"{system['ingest'].url}/v1/events:batch",
            content=json.dumps([observation(first, 40.0), observation(second, 30.0)]),
            headers={
                "content-type": "application/cloudevents-batch+json",
                **await ministry_key(mongo, mongo_config),
            },
        )
        assert answer.status_code in (200, 202), answer.text
        (webhook,) = await receiver.wait_for(1, timeout_s=60)
        body = Webhook(secret).verify(webhook.body, webhook.headers)
        assert body["data"]["count"] == 2
        assert {c["kpi_id"] for c in body["data"]["changes"]} == {first, second}
        deliveries = await admin_get(
            http, system, admin_token, f"/v1/subscriptions/{sub}/deliveries"
        )
        (delivery,) = deliveries["items"]
        assert delivery["id"] == webhook.headers["webhook-id"]
        assert len(delivery["notification_ids"]) == 2


async def test_private_and_metadata_targets_are_refused(
    system: dict[str, RunningService], admin_token: str
) -> None:
    """A subscription to a private-range or metadata URL is refused (422, ssrf_refused); the
    API refuses anyone without the admin token."""
    async with httpx.AsyncClient(timeout=20) as http:
        for url in ("http://10.20.30.40/hook", "http://169.254.169.254/latest/meta-data/"):
            answer = await http.post(
                f"{system['alerts'].url}/v1/subscriptions",
                headers={"Authorization": f"Bearer {admin_token}"},
                json={"url": url},
            )
            assert answer.status_code == 422, answer.text
            assert answer.json()["code"] == "ssrf_refused"
        anonymous = await http.get(f"{system['alerts'].url}/v1/subscriptions")
        assert anonymous.status_code == 401


async def test_a_ministry_rating_its_measure_on_track_while_its_kpi_is_off_track_is_a_divergence(
    system: dict[str, RunningService],
    mongo: MongoClient,
    mongo_config: MongoSettings,
    admin_token: str,
) -> None:
    """The KPI falls off track and the ministry rates its measure on track: kpi publishes a
    divergence episode and a subscriber of the measure receives `measure.divergence` (major),
    verified, carrying the self-assessment; the ministry's later off-track rating closes the
    episode without another webhook."""
    measure = f"m.div-{secrets.token_hex(3)}"
    for reader in CATALOGUE_READERS:  # the measure in each service's catalogue copy
        await mongo[service_database(mongo_config.database, reader)][MEASURES].replace_one(
            {"_id": measure},
            {
                "_id": measure,
                "id": measure,
                "name_ja": "試験施策",
                "name_en": "Divergence test measure",
                "ministries": ["mic"],
                "state": "active",
            },
            upsert=True,
        )
    kpi_id = await new_kpi(mongo, mongo_config, measure)
    key = await ministry_key(mongo, mongo_config)

    async def assess(rating: str) -> None:
        answer = await http.post(
            f"{system['ingest'].url}/v1/events",
            content=json.dumps(
                {
                    "specversion": "1.0",
                    "id": secrets.token_hex(8),
                    "source": "/ministries/mic",
                    "type": "shinchoku.measure.assessed.v1",
                    "subject": measure,
                    "time": datetime.now(UTC).isoformat(),
                    "data": {
                        "measure_id": measure,
                        "rating": rating,
                        "as_of": date.today().isoformat(),
                    },
                }
            ),
            headers={"content-type": "application/cloudevents+json", **key},
        )
        assert answer.status_code == 202, answer.text

    async with webhook_receiver() as receiver, httpx.AsyncClient(timeout=20) as http:
        sub, secret = await subscribe(
            http,
            system,
            admin_token,
            {"url": receiver.url, "filter": {"measures": [measure], "kinds": ["divergence"]}},
        )
        await post_slip(http, system, key, kpi_id)
        await assess("on_track")
        (webhook,) = await receiver.wait_for(1, timeout_s=60)
        body = Webhook(secret).verify(webhook.body, webhook.headers)
        assert body["type"] == "measure.divergence"
        data = body["data"]
        assert (data["kind"], data["measure_id"], data["kpi_id"]) == ("measure", measure, None)
        assert data["status"] == "off_track"
        assert data["explanation"]["self_assessment"] == "on_track"
        assert data["explanation"]["divergence"] == "major"
        assert data["episode_id"] == f"{measure}:divergence:1"
        assert data["link"].endswith(f"/v1/measures/{measure}/status")

        # Agreeing again closes the episode (kpi's second change of the measure); alerts
        # receives it and sends nothing more.
        await assess("off_track")
        closed = f'"event_id": "divergence:{measure}:2"'

        def received_close() -> bool:
            lines = system["alerts"].log_path.read_text(errors="replace").splitlines()
            return any("divergence_received" in line and closed in line for line in lines)

        async with asyncio.timeout(60):
            while not received_close():  # noqa: ASYNC110 - polling a log file
                await asyncio.sleep(0.2)
        deliveries = await admin_get(
            http, system, admin_token, f"/v1/subscriptions/{sub}/deliveries"
        )
        assert [d["type"] for d in deliveries["items"]] == ["measure.divergence"]

"""One KPI observation travels the whole pipeline on the real stack."""

from __future__ import annotations

import json
import secrets
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime

import httpx
import pytest
from standardwebhooks.webhooks import Webhook

from harness.services import RunningService, upsert_catalogue_item
from harness.webhooks import webhook_receiver
from shared.mongo import MongoClient
from shared.settings import MongoSettings

pytestmark = pytest.mark.e2e


async def test_observation_far_behind_plan_reaches_a_signed_webhook(
    system: dict[str, RunningService],
    mongo: MongoClient,
    mongo_config: MongoSettings,
    admin_token: str,
    ministry_headers: Callable[[str], Awaitable[dict[str, str]]],
) -> None:
    """A KPI observation far behind its trajectory, POSTed to ingest, is stored by the kpi
    service, turns the KPI off track, and arrives at a subscriber as a signed webhook."""
    kpi_id = f"kpi.e2e-{secrets.token_hex(3)}"
    await upsert_catalogue_item(
        mongo,
        mongo_config.database,
        {
            "_id": kpi_id,
            "id": kpi_id,
            "kind": "kpi",
            "measure_id": "m.e2e",
            "name_ja": "試験指標",
            "name_en": "Test indicator",
            "unit": "%",
            "direction": "increase",
            "ministries": ["mic"],
            "baseline": {"value": 50.0, "as_of": "2022-03-31"},
            "targets": [{"value": 100.0, "deadline": "2030-03-31", "deadline_text": "2029年度末"}],
            "state": "active",
        },
    )
    async with webhook_receiver() as receiver, httpx.AsyncClient(timeout=20) as http:
        created = await http.post(
            f"{system['alerts'].url}/v1/subscriptions",
            headers={"Authorization": f"Bearer {admin_token}"},
            json={"url": receiver.url, "filter": {"kpis": [kpi_id]}},
        )
        assert created.status_code == 201, created.text
        secret = created.json()["secret"]
        assert secret.startswith("whsec_")

        auth = await ministry_headers("mic")
        event = {
            "specversion": "1.0",
            "id": secrets.token_hex(8),
            "source": "/ministries/mic",
            "type": "shinchoku.kpi.observed.v1",
            "subject": kpi_id,
            "time": datetime.now(UTC).isoformat(),
            "datacontenttype": "application/json",
            "data": {"kpi_id": kpi_id, "value": 40.0, "as_of": date.today().isoformat()},
        }
        answer = await http.post(
            f"{system['ingest'].url}/v1/events",
            content=json.dumps(event),
            headers={"content-type": "application/cloudevents+json", **auth},
        )
        assert answer.status_code == 202, answer.text

        (delivery,) = await receiver.wait_for(1, timeout_s=60)
        payload = Webhook(secret).verify(delivery.body, delivery.headers)
        assert payload["type"] == "kpi.slipped"
        assert payload["data"]["kpi_id"] == kpi_id
        assert payload["data"]["status"] == "off_track"
        assert payload["data"]["previous_status"] in {None, "no_data"}

        status = await http.get(f"{system['kpi'].url}/v1/kpis/{kpi_id}")
        assert status.status_code == 200
        body = status.json()
        assert body["status"] == "off_track"
        assert [o["event_id"] for o in body["observations"]] == [event["id"]]

        again = await http.post(
            f"{system['ingest'].url}/v1/events",
            content=json.dumps(event),
            headers={"content-type": "application/cloudevents+json", **auth},
        )
        assert again.status_code == 200
        assert again.json()["duplicate"] is True

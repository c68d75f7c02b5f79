"""One event followed through the three services' logs with a single search for its id."""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime
from typing import Any

import httpx
import pytest

from harness.services import RunningService, upsert_catalogue_item
from shared.mongo import MongoClient
from shared.settings import MongoSettings

pytestmark = pytest.mark.e2e

SERVICES = ("ingest", "kpi", "alerts")


def lines_with(service: RunningService, text: str) -> list[str]:
    return [line for line in service.log_path.read_text().splitlines() if text in line]


async def test_one_observation_is_found_in_every_services_log_by_its_event_id(
    system: dict[str, RunningService],
    mongo: MongoClient,
    mongo_config: MongoSettings,
    ministry_headers: Callable[[str], Awaitable[dict[str, str]]],
) -> None:
    """Searching the logs for one observation's event id finds JSON lines in ingest (accepted),
    kpi (handled) and alerts (the status change it caused), each naming its service, and the
    kpi's status-change line leads to the alerts line by the status event's id."""
    kpi_id = f"kpi.logs-{secrets.token_hex(3)}"
    await upsert_catalogue_item(
        mongo,
        mongo_config.database,
        {
            "_id": kpi_id,
            "id": kpi_id,
            "kind": "kpi",
            "measure_id": "m.logs",
            "unit": "件",
            "direction": "increase",
            "ministries": ["mic"],
            "state": "active",
            "baseline": {"value": 0.0, "as_of": "2022-03-31"},
            "targets": [{"value": 1000.0, "deadline": "2031-03-31", "deadline_text": "2030年度末"}],
        },
    )
    event_id = f"logs-{secrets.token_hex(8)}"
    event = {
        "specversion": "1.0",
        "id": event_id,
        "source": "/ministries/mic",
        "type": "shinchoku.kpi.observed.v1",
        "subject": kpi_id,
        "time": datetime.now(UTC).isoformat(),
        "data": {"kpi_id": kpi_id, "value": 990.0, "as_of": date.today().isoformat()},
    }
    async with httpx.AsyncClient(timeout=20) as http:
        answer = await http.post(
            f"{system['ingest'].url}/v1/events",
            content=json.dumps(event),
            headers={
                "content-type": "application/cloudevents+json",
                **await ministry_headers("mic"),
            },
        )
    assert answer.status_code == 202, answer.text

    # Wait for the very lines asserted on: each service may log other lines naming the event
    # first (kpi's status_changed before its events_handled).
    def complete(records: dict[str, list[dict[str, Any]]]) -> bool:
        return (
            any(r["event"] == "events_accepted" for r in records["ingest"])
            and any(r["event"] == "events_handled" for r in records["kpi"])
            and any(r["event"] == "status_change_received" for r in records["alerts"])
        )

    found: dict[str, list[str]] = {}
    records: dict[str, list[dict[str, Any]]] = {name: [] for name in SERVICES}
    async with asyncio.timeout(60):
        while not complete(records):
            await asyncio.sleep(0.2)
            found = {name: lines_with(system[name], event_id) for name in SERVICES}
            records = {name: [json.loads(line) for line in found[name]] for name in SERVICES}

    for name, lines in found.items():
        assert all(record["service"] == name for record in records[name]), lines
    assert any(
        r["event"] == "events_accepted" and kpi_id in r["kpi_ids"] for r in records["ingest"]
    )
    assert any(r["event"] == "events_handled" and kpi_id in r["kpi_ids"] for r in records["kpi"])
    received = [r for r in records["alerts"] if r["event"] == "status_change_received"]
    assert received, records["alerts"]
    assert received[0]["kpi_id"] == kpi_id
    assert event_id in received[0]["caused_by"]
    # The status change's own id leads from the kpi's line to the alerts' one.
    status_event_id = received[0]["event_id"]
    changed = [json.loads(line) for line in lines_with(system["kpi"], f'"{status_event_id}"')]
    assert any(r["event"] == "status_changed" and r["kpi_id"] == kpi_id for r in changed)
    assert all(r["service"] == "kpi" for r in changed)

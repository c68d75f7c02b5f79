"""The HTTP answers to the service layer's errors, on the in-memory graph (no lifespan, no
infrastructure): a store that is down answers exactly what a MongoDB error answered before the
adapters translated it (shared/http/problems.py's handler, still installed)."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from datetime import datetime

import httpx
import pytest
from pymongo.errors import ServerSelectionTimeoutError

from services.ingest.adapters.memory import MemoryKeyStore
from services.ingest.bootstrap import create_app
from services.ingest.composition import IngestAdapters, build_service
from services.ingest.domain.keys import KeyRecord
from services.ingest.settings import IngestSettings
from tests.support.ingest_memory import MemoryIngest, kpi_observed, memory_ingest

ADMIN_TOKEN = secrets.token_urlsafe(16)
ADMIN = {"authorization": f"Bearer {ADMIN_TOKEN}"}


class DriverFailingKeyStore(MemoryKeyStore):
    """A key store that lets the driver's own error through, as before the ports existed."""

    async def list(self, ministry: str | None = None) -> list[KeyRecord]:
        raise ServerSelectionTimeoutError("no primary")

    async def get(self, key_id: str) -> KeyRecord | None:
        raise ServerSelectionTimeoutError("no primary")

    async def create(
        self, ministry: str, now: datetime, label: str | None = None
    ) -> tuple[str, KeyRecord]:
        raise ServerSelectionTimeoutError("no primary")


@pytest.fixture
def ingest() -> MemoryIngest:
    return memory_ingest()


async def client_for(ingest: MemoryIngest) -> AsyncIterator[httpx.AsyncClient]:
    settings = IngestSettings.model_validate(
        {"log_json": True, "SHINCHOKU_ADMIN_TOKEN": ADMIN_TOKEN}
    )
    app = create_app(settings, clock=ingest.clock)
    # What the lifespan puts in place, on the in-memory graph.
    app.state.ingest = ingest.service
    app.state.ingest_settings = settings
    app.state.ingest_metrics = ingest.metrics
    app.state.admin_token = ADMIN_TOKEN
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://ingest") as http:
        yield http


@pytest.fixture
async def http(ingest: MemoryIngest) -> AsyncIterator[httpx.AsyncClient]:
    async for client in client_for(ingest):
        yield client


@pytest.fixture
async def http_before(ingest: MemoryIngest) -> AsyncIterator[httpx.AsyncClient]:
    """The same app on a key store that raises the driver's error."""
    failing = DriverFailingKeyStore()
    adapters = IngestAdapters(
        catalogue=ingest.catalogue,
        receipts=ingest.receipts,
        publisher=ingest.publisher,
        keys=failing,
        key_lookup=failing,
        ownership=ingest.ownership,
    )
    service = build_service(
        IngestSettings.model_validate({"log_json": True}),
        adapters,
        clock=ingest.clock,
        metrics=ingest.metrics,
    )
    before = MemoryIngest(**{**vars(ingest), "service": service})
    async for client in client_for(before):
        yield client


def same_answer(now: httpx.Response, before: httpx.Response) -> None:
    assert now.status_code == before.status_code == 503
    assert now.content == before.content
    assert now.headers == before.headers


async def test_a_key_store_outage_answers_as_a_database_error_did(
    ingest: MemoryIngest, http: httpx.AsyncClient, http_before: httpx.AsyncClient
) -> None:
    """Listing and creating keys (admin API) and authenticating (every event route)."""
    ingest.keys.down = True
    for method, path, json in (
        ("GET", "/v1/admin/keys", None),
        ("POST", "/v1/admin/keys", {"ministry": "mic"}),
    ):
        same_answer(
            await http.request(method, path, headers=ADMIN, json=json),
            await http_before.request(method, path, headers=ADMIN, json=json),
        )
    event = kpi_observed(ingest.clock).model_dump(mode="json", exclude_none=True)
    key = {"authorization": f"Bearer shk_a1b2c3d4e5f6_{'x' * 43}"}
    same_answer(
        await http.post("/v1/events", json=event, headers=key),
        await http_before.post("/v1/events", json=event, headers=key),
    )
    assert (await http.get("/v1/admin/keys", headers=ADMIN)).json()["code"] == "storage"


async def test_an_ownership_store_outage_is_a_storage_problem(
    ingest: MemoryIngest, http: httpx.AsyncClient
) -> None:
    ingest.ownership.down = True
    answer = await http.get("/v1/admin/items/kpi.mynumber-card-coverage/ownership", headers=ADMIN)
    assert answer.status_code == 503
    assert answer.headers["content-type"] == "application/problem+json"
    problem = answer.json()
    assert (problem["type"], problem["code"]) == ("/problems/storage-unavailable", "storage")
    assert answer.headers["retry-after"] == "5"


async def test_a_catalogue_outage_is_the_event_routes_storage_problem(
    ingest: MemoryIngest, http: httpx.AsyncClient
) -> None:
    """The event routes' own 503 (per event), with the receipt store's wording."""
    full, _ = await ingest.service.key_admin.create("digital", None)
    ingest.catalogue.down = True
    event = kpi_observed(ingest.clock).model_dump(mode="json", exclude_none=True)
    answer = await http.post(
        "/v1/events",
        json=event,
        headers={"authorization": f"Bearer {full}", "content-type": "application/cloudevents+json"},
    )
    assert answer.status_code == 503
    assert answer.headers["retry-after"] == "5"
    assert answer.json()["code"] == "storage"

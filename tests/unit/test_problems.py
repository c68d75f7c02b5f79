"""Every service answers RFC 9457 problem details for every error: an unexpected exception is a
500 with no internals, a database error a 503 with Retry-After, every problem has a `code`, and
every problem type URI resolves to a page."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pymongo.errors import ServerSelectionTimeoutError

from services.alerts.bootstrap import create_app as create_alerts
from services.alerts.settings import AlertsSettings
from services.ingest.bootstrap import create_app as create_ingest
from services.ingest.settings import IngestSettings
from services.kpi.bootstrap import create_app as create_kpi
from services.kpi.settings import KpiSettings
from shared.http.problems import PROBLEM_BASE, PROBLEM_JSON, problem_types

FACTORIES: dict[str, Callable[[], FastAPI]] = {
    "ingest": lambda: create_ingest(IngestSettings()),
    "kpi": lambda: create_kpi(KpiSettings()),
    "alerts": lambda: create_alerts(AlertsSettings()),
}
SECRET = "mongodb://operator:hunter2@db.internal"


def _boom() -> None:
    raise RuntimeError(f"connection string {SECRET} leaked")


def _database_down() -> None:
    raise ServerSelectionTimeoutError(f"{SECRET}: no servers found")


@pytest.fixture(params=sorted(FACTORIES), scope="module")
def app(request: pytest.FixtureRequest) -> FastAPI:
    # The lifespan never runs (no Kafka, no MongoDB): only the HTTP shell is exercised.
    app = FACTORIES[request.param]()
    app.add_api_route("/test-only/boom", _boom)
    app.add_api_route("/test-only/database-down", _database_down)
    return app


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    # raise_app_exceptions=False: Starlette re-raises after answering (so the server logs it).
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://service") as client:
        yield client


async def test_an_unexpected_exception_is_a_problem_500_without_internals(
    client: httpx.AsyncClient,
) -> None:
    """A bug answers problem+json 500 with code internal_error, never the exception's text."""
    response = await client.get("/test-only/boom")
    assert response.status_code == 500
    assert response.headers["content-type"] == PROBLEM_JSON
    body = response.json()
    assert body["type"] == PROBLEM_BASE + "internal-error"
    assert body["status"] == 500
    assert body["code"] == "internal_error"
    assert "hunter2" not in response.text
    assert "RuntimeError" not in response.text


async def test_a_database_error_is_a_problem_503_with_retry_after(
    client: httpx.AsyncClient,
) -> None:
    """PyMongoError anywhere in a request answers 503 storage-unavailable with Retry-After."""
    response = await client.get("/test-only/database-down")
    assert response.status_code == 503
    assert response.headers["content-type"] == PROBLEM_JSON
    assert int(response.headers["retry-after"]) >= 1
    body = response.json()
    assert body["type"] == PROBLEM_BASE + "storage-unavailable"
    assert body["code"] == "storage"
    assert "hunter2" not in response.text


@pytest.mark.parametrize(
    ("method", "path", "status", "code"),
    [("GET", "/no-such-path", 404, "not_found"), ("DELETE", "/healthz", 405, "method_not_allowed")],
)
async def test_routing_errors_are_problems_with_a_code(
    client: httpx.AsyncClient, method: str, path: str, status: int, code: str
) -> None:
    response = await client.request(method, path)
    assert response.status_code == status
    assert response.headers["content-type"] == PROBLEM_JSON
    assert response.json()["code"] == code


def _documented_types(document: dict[str, Any]) -> set[str]:
    types: set[str] = set()
    for operations in document["paths"].values():
        for operation in operations.values():
            for response in operation.get("responses", {}).values():
                content = response.get("content", {}).get(PROBLEM_JSON, {})
                for example in content.get("examples", {}).values():
                    types.add(example["value"]["type"])
                    assert "code" in example["value"], example
    return types


async def test_every_problem_type_uri_resolves_to_a_page(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    """Each problem type the service documents, and each one it defines, is a 200 HTML page."""
    documented = _documented_types(app.openapi())
    assert documented, "the service documents no problem examples"
    defined = {cls.type_uri() for cls in problem_types().values()}
    for uri in sorted(documented | defined):
        assert uri.startswith(PROBLEM_BASE), uri
        response = await client.get(uri)
        assert response.status_code == 200, uri
        assert response.headers["content-type"].startswith("text/html")
        assert "<h1>" in response.text


async def test_an_unknown_problem_type_is_itself_a_problem(client: httpx.AsyncClient) -> None:
    response = await client.get(PROBLEM_BASE + "no-such-problem")
    assert response.status_code == 404
    assert response.json()["code"] == "unknown_problem_type"

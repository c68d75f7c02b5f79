"""A NUL character never reaches the store: PostgreSQL (under FerretDB) refuses it in any text
value, so it must be refused as the caller's mistake, never answered as a storage outage."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest
from fastapi import APIRouter, FastAPI
from prometheus_client import CollectorRegistry

from shared.events.strict_json import InvalidJsonError, holds_nul, loads_strict
from shared.http.app import create_service_app


@pytest.mark.parametrize(
    "text",
    [
        b'{"id": "a\\u0000b"}',
        '{"data": {"note": ["ok", "\\u0000"]}}',
        b'{"k\\u0000": 1}',
    ],
)
def test_a_json_string_holding_nul_is_refused(text: bytes | str) -> None:
    with pytest.raises(InvalidJsonError) as refused:
        loads_strict(text)
    assert refused.value.code == "nul_character"


def test_an_escaped_backslash_before_u0000_is_only_text() -> None:
    """`"\\\\u0000"` is the six characters backslash-u-0-0-0-0, which any store keeps."""
    assert loads_strict(b'{"note": "\\\\u0000"}') == {"note": "\\u0000"}


def test_holds_nul_looks_at_keys_values_and_nesting() -> None:
    assert holds_nul({"a": [1, {"b": "x\x00"}]})
    assert holds_nul({"\x00": 1})
    assert not holds_nul({"a": [1, {"b": "x"}], "c": None})


def _app() -> FastAPI:
    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield

    router = APIRouter()

    @router.get("/things/{thing_id}")
    async def thing(thing_id: str, q: str = "") -> dict[str, str]:
        return {"thing_id": thing_id, "q": q}

    return create_service_app(
        service="test",
        title="t",
        description="t",
        lifespan=lifespan,
        registry=CollectorRegistry(),
        routers=[router],
    )


async def get(url: str) -> httpx.Response:
    transport = httpx.ASGITransport(app=_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        return await client.get(url)


@pytest.mark.parametrize("url", ["/things/a%00b", "/things/a?q=x%00y", "/things/a?q=%00"])
async def test_a_path_or_query_holding_nul_is_a_422_problem(url: str) -> None:
    answer = await get(url)
    assert answer.status_code == 422
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert answer.json()["type"].endswith("/validation-error")
    assert "NUL" in answer.json()["detail"]


async def test_other_paths_and_queries_pass() -> None:
    answer = await get("/things/a?q=%E9%80%B2%E6%8D%97")
    assert answer.status_code == 200
    assert answer.json() == {"thing_id": "a", "q": "進捗"}

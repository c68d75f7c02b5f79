"""One paging convention per kind of list, in every service (shared/http/pagination.py):
collections take limit + offset and answer total, limit, offset; append-only streams take
limit + after and answer next_after. Cursors round-trip and a forged one is a 422 problem."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from fastapi import FastAPI
from hypothesis import given
from hypothesis import strategies as st

from services.alerts.bootstrap import create_app as create_alerts
from services.alerts.settings import AlertsSettings
from services.kpi.bootstrap import create_app as create_kpi
from services.kpi.settings import KpiSettings
from shared.http.pagination import decode_cursor, encode_cursor
from shared.http.problems import ValidationProblem

FACTORIES: dict[str, Callable[[], FastAPI]] = {
    "kpi": lambda: create_kpi(KpiSettings()),
    "alerts": lambda: create_alerts(AlertsSettings()),
}
OFFSET_PAGE = {"items", "total", "limit", "offset"}
STREAM_PAGE = {"items", "next_after"}


def _schema(document: dict[str, Any], ref: str) -> dict[str, Any]:
    schema: dict[str, Any] = document["components"]["schemas"][ref.rsplit("/", 1)[-1]]
    return schema


def list_operations(document: dict[str, Any]) -> list[tuple[str, set[str], set[str]]]:
    """(path, query parameters, response properties) of every GET answering `items`."""
    found = []
    for path, operations in document["paths"].items():
        get = operations.get("get")
        if get is None:
            continue
        content = get["responses"].get("200", {}).get("content", {}).get("application/json", {})
        ref = content.get("schema", {}).get("$ref")
        if ref is None:
            continue
        properties = set(_schema(document, ref).get("properties", {}))
        if "items" not in properties:
            continue
        query = {p["name"] for p in get.get("parameters", []) if p["in"] == "query"}
        found.append((path, query, properties))
    return found


@pytest.mark.parametrize("service", sorted(FACTORIES))
def test_every_list_is_an_offset_page_or_a_stream_page(service: str) -> None:
    lists = list_operations(FACTORIES[service]().openapi())
    assert lists
    for path, query, properties in lists:
        if properties == OFFSET_PAGE:
            assert {"limit", "offset"} <= query, path
            assert "after" not in query, path
        else:
            assert properties == STREAM_PAGE, (path, properties)
            assert {"limit", "after"} <= query, path
            assert "offset" not in query, path


@given(
    at=st.datetimes(timezones=st.just(UTC)),
    key=st.text(min_size=1, max_size=40),
)
def test_a_cursor_round_trips(at: datetime, key: str) -> None:
    assert decode_cursor(encode_cursor(at, key)) == (at, key)


def test_a_cursor_keeps_its_offset() -> None:
    at = datetime(2026, 4, 1, 9, tzinfo=timezone(timedelta(hours=9)))
    assert decode_cursor(encode_cursor(at, "x"))[0] == at


@pytest.mark.parametrize("forged", ["", "not-a-cursor", "e30", "WyJub3QgYSBkYXRlIiwieCJd"])
def test_a_forged_cursor_is_a_validation_problem(forged: str) -> None:
    with pytest.raises(ValidationProblem) as raised:
        decode_cursor(forged)
    assert raised.value.extensions["code"] == "invalid_cursor"

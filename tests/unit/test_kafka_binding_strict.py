"""The Kafka binding reads records as strictly as ingest reads requests."""

from __future__ import annotations

import json
from typing import Any

import pytest

from shared.events.contracts import MINISTRY_EVENT_TYPES
from shared.events.kafka_binding import STRUCTURED_CONTENT_TYPE, UndecodableRecord, decode_event

STRUCTURED = [("content-type", STRUCTURED_CONTENT_TYPE.encode())]
DATA = {"kpi_id": "kpi.coverage", "value": 12.5, "as_of": "2024-03-31"}


def event(**overrides: Any) -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "id": "e1",
        "source": "/ministries/mic",
        "type": "shinchoku.kpi.observed.v1",
        "data": DATA,
        **overrides,
    }


def binary_headers(content_type: str) -> list[tuple[str, bytes]]:
    return [
        ("content-type", content_type.encode()),
        ("ce_specversion", b"1.0"),
        ("ce_id", b"e1"),
        ("ce_source", b"/ministries/mic"),
        ("ce_type", b"shinchoku.kpi.observed.v1"),
    ]


def test_json_parameters_are_accepted_in_structured_and_binary_mode() -> None:
    """application/json; charset=utf-8 is JSON in both modes of the Kafka binding."""
    structured = json.dumps(event(datacontenttype="application/json; charset=utf-8")).encode()
    assert decode_event(structured, STRUCTURED, MINISTRY_EVENT_TYPES).id == "e1"
    value = json.dumps(DATA).encode()
    headers = binary_headers("application/json; charset=utf-8")
    decoded = decode_event(value, headers, MINISTRY_EVENT_TYPES)
    assert decoded.time is None
    assert decoded.subject is None


def test_binary_data_of_another_media_type_is_a_schema_violation() -> None:
    """Binary-mode data that says it is not JSON is refused."""
    with pytest.raises(UndecodableRecord) as caught:
        decode_event(json.dumps(DATA).encode(), binary_headers("text/plain"), MINISTRY_EVENT_TYPES)
    assert caught.value.reason == "schema_violation"


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (b"[" * 900 + b"]" * 900, "invalid_json"),
        (b'{"specversion": "1.0", "specversion": "1.0"}', "invalid_json"),
        (json.dumps(event(source="/ministries/mic/")).encode(), "schema_violation"),
        (json.dumps(event(time="1733300000")).encode(), "schema_violation"),
        (json.dumps(event(data={**DATA, "value": "12"})).encode(), "schema_violation"),
        (json.dumps(event(myext={"a": 1})).encode(), "schema_violation"),
    ],
    ids=["deep", "duplicate", "source", "time", "string-value", "object-extension"],
)
def test_loose_records_are_undecodable(value: bytes, reason: str) -> None:
    """A record the HTTP boundary would refuse is undecodable here too, with its reason."""
    with pytest.raises(UndecodableRecord) as caught:
        decode_event(value, STRUCTURED, MINISTRY_EVENT_TYPES)
    assert caught.value.reason == reason


def test_a_status_change_needs_its_time() -> None:
    """Only ministry events may leave `time` out: alerts orders a KPI's changes by it."""
    from shared.events.contracts import STATUS_EVENT_TYPES

    record = {
        "specversion": "1.0",
        "id": "s1",
        "source": "/services/kpi",
        "type": "shinchoku.kpi.status_changed.v1",
        "data": {
            "kpi_id": "kpi.coverage",
            "kind": "kpi",
            "measure_id": "m.1.x",
            "ministries": ["mic"],
            "previous_status": None,
            "status": "on_track",
            "episode_id": None,
            "evaluated_on": "2024-04-01",
            "explanation": {},
        },
    }
    decoded = decode_event(
        json.dumps({**record, "time": "2024-04-01T00:00:00Z"}).encode(),
        STRUCTURED,
        STATUS_EVENT_TYPES,
    )
    assert decoded.time is not None
    with pytest.raises(UndecodableRecord) as caught:
        decode_event(json.dumps(record).encode(), STRUCTURED, STATUS_EVENT_TYPES)
    assert caught.value.reason == "schema_violation"

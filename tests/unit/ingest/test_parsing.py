"""HTTP → CloudEvent per the CloudEvents HTTP binding: structured, binary and batch modes."""

from __future__ import annotations

import json
from typing import Any

import pytest

from services.ingest.entrypoints import parsing
from services.ingest.entrypoints.problems import BatchTooLarge, InvalidEvent, UnknownEventType
from shared.events.contracts import KpiObservedEvent
from shared.http.problems import MalformedRequest, Problem, UnsupportedMediaType


def event(**overrides: Any) -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "id": "e1",
        "source": "/ministries/mic",
        "type": "shinchoku.kpi.observed.v1",
        "subject": "kpi.coverage",
        "time": "2024-04-01T09:00:00+09:00",
        "datacontenttype": "application/json",
        "data": {"kpi_id": "kpi.coverage", "value": 12.5, "as_of": "2024-03-31"},
        **overrides,
    }


def test_structured_mode_gives_the_typed_event() -> None:
    """A structured-mode body becomes the event model of its type."""
    parsed = parsing.structured_event(json.dumps(event()).encode())
    assert isinstance(parsed, KpiObservedEvent)
    assert parsed.data.value == 12.5


def test_binary_mode_reads_percent_encoded_headers() -> None:
    """Binary mode: attributes from ce-* headers (percent-decoded), the body is the data."""
    headers = {
        "content-type": "application/json; charset=utf-8",
        "ce-specversion": "1.0",
        "ce-id": "id%20with%20spaces%E2%9C%93",
        "ce-source": "/ministries/mic",
        "ce-type": "shinchoku.kpi.observed.v1",
        "ce-subject": "kpi.coverage",
        "ce-time": "2024-04-01T09:00:00+09:00",
    }
    parsed = parsing.binary_event(headers, json.dumps(event()["data"]).encode())
    assert parsed.id == "id with spaces✓"
    assert parsed.data.kpi_id == "kpi.coverage"


def test_binary_mode_data_must_be_json() -> None:
    """Binary-mode data in another media type is refused with 415."""
    with pytest.raises(UnsupportedMediaType):
        parsing.binary_event({"content-type": "text/csv", "ce-specversion": "1.0"}, b"a,b")


@pytest.mark.parametrize(
    ("raw", "problem", "field"),
    [
        (b"{", MalformedRequest, "(body)"),
        (json.dumps(event(type="shinchoku.other.v1")).encode(), UnknownEventType, "type"),
        (json.dumps(event(time="yesterday")).encode(), InvalidEvent, "time"),
        (json.dumps(event(time="2024-04-01T09:00:00")).encode(), InvalidEvent, "time"),
        (json.dumps(event(id="")).encode(), InvalidEvent, "id"),
        (json.dumps(event(data_base64="AAAA")).encode(), InvalidEvent, "data"),
        (json.dumps([event()]).encode(), InvalidEvent, "(body)"),
    ],
)
def test_structured_mode_refusals_name_the_field(
    raw: bytes, problem: type[Problem], field: str
) -> None:
    """Each refusal is its own problem type and names the offending field."""
    with pytest.raises(problem) as caught:
        parsing.structured_event(raw)
    fields = [e.field for e in caught.value.errors or []]
    assert any(f.startswith(field) for f in fields), fields


def test_a_batch_answers_bad_items_individually() -> None:
    """A batch parses into events and per-item problems, in order."""
    items = [event(), {"type": "nope", "id": "x", "source": "/ministries/mic"}, 3, event(id="e2")]
    parsed = parsing.batch_events(json.dumps(items).encode(), max_events=10)
    assert isinstance(parsed[0], KpiObservedEvent)
    assert isinstance(parsed[1], parsing.Unparsed)
    assert parsed[1].id == "x"
    assert isinstance(parsed[1].problem, UnknownEventType)
    assert isinstance(parsed[2], parsing.Unparsed)
    assert isinstance(parsed[3], KpiObservedEvent)


def test_a_batch_over_the_count_is_refused_whole() -> None:
    """More events than the limit: 413 batch-too-large; not an array: 400."""
    with pytest.raises(BatchTooLarge):
        parsing.batch_events(json.dumps([event()] * 3).encode(), max_events=2)
    with pytest.raises(MalformedRequest):
        parsing.batch_events(json.dumps(event()).encode(), max_events=2)


def test_media_types_ignore_parameters_and_case() -> None:
    """Content types compare without parameters, case-insensitively."""
    assert parsing.is_structured("Application/CloudEvents+JSON; charset=utf-8")
    assert parsing.is_batch("application/cloudevents-batch+json")
    assert not parsing.is_structured("application/json")


def test_ingest_encodes_records_as_the_shared_binding_does() -> None:
    """Ingest's one-pass encoder writes the record shared/events/kafka_binding.py defines."""
    from services.ingest.domain.encoding import encode_event
    from shared.events.kafka_binding import encode_structured

    for raw in (event(), event(partitionkey="kpi.coverage", dataschema=None, traceparent="00-x")):
        parsed = parsing.structured_event(json.dumps(raw).encode())
        ours = encode_event(parsed, "kpi.coverage")
        shared = encode_structured(parsed.model_copy(update={"partitionkey": "kpi.coverage"}))
        assert json.loads(ours.value) == json.loads(shared.value)
        assert (ours.key, ours.headers) == (shared.key, shared.headers)
    with_null_note = event()
    with_null_note["data"]["note"] = None
    parsed = parsing.structured_event(json.dumps(with_null_note).encode())
    assert json.loads(encode_event(parsed, "kpi.coverage").value)["data"]["note"] is None


def test_the_one_pass_parse_of_a_valid_batch_equals_the_per_item_parse() -> None:
    """A valid batch (parsed in one pass) gives the same events as parsing item by item."""
    items = [event(id=f"e{n}", traceparent="00-abc") for n in range(5)]
    fast = parsing.batch_events(json.dumps(items).encode(), max_events=10)
    slow = [parsing.event_from_attributes(item) for item in items]
    assert fast == slow
    assert parsing.structured_event(json.dumps(items[0]).encode()) == slow[0]

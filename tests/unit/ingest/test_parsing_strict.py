"""Strict input at the HTTP boundary (issue 12 items 2, 3, 7, 8; issue 16 CloudEvents): bounded
depth, strict JSON and types, CloudEvents types for extensions, canonical sources, RFC 3339
`time`, optional `time`/`subject`, media-type parameters."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.ingest.entrypoints import parsing
from services.ingest.entrypoints.problems import InvalidEvent
from shared.events.strict_json import MAX_JSON_DEPTH, InvalidJsonError, loads_strict
from shared.http.problems import MalformedRequest, Problem

DEEP = b"[" * 900 + b"]" * 900


def event(**overrides: Any) -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "id": "e1",
        "source": "/ministries/mic",
        "type": "shinchoku.kpi.observed.v1",
        "subject": "kpi.coverage",
        "time": "2024-04-01T09:00:00+09:00",
        "data": {"kpi_id": "kpi.coverage", "value": 12.5, "as_of": "2024-03-31"},
        **overrides,
    }


def without(*names: str) -> dict[str, Any]:
    return {k: v for k, v in event().items() if k not in names}


def refused(body: bytes) -> Problem:
    with pytest.raises(Problem) as caught:
        parsing.structured_event(body)
    return caught.value


def fields(problem: Problem) -> list[str]:
    return [e.field for e in problem.errors or []]


@pytest.mark.parametrize(
    "body", [DEEP, b'{"data":' * 900 + b"1" + b"}" * 900, b"[" * 100_000], ids=str
)
def test_deep_nesting_is_a_malformed_request_in_every_mode(body: bytes) -> None:
    """Nesting far beyond any event is a 400 problem in structured, binary and batch modes;
    RecursionError never escapes."""
    with pytest.raises(MalformedRequest):
        parsing.structured_event(body)
    with pytest.raises(MalformedRequest):
        parsing.batch_events(body, 10)
    headers = {"content-type": "application/json", "ce-specversion": "1.0"}
    with pytest.raises(MalformedRequest):
        parsing.binary_event(headers, body)


@given(st.integers(min_value=1, max_value=200))
def test_depth_is_refused_exactly_beyond_the_limit(depth: int) -> None:
    """loads_strict accepts nesting up to MAX_JSON_DEPTH and refuses anything deeper."""
    text = "[" * depth + "]" * depth
    if depth <= MAX_JSON_DEPTH:
        assert loads_strict(text) is not None
    else:
        with pytest.raises(InvalidJsonError) as caught:
            loads_strict(text)
        assert caught.value.code == "too_deep"


@pytest.mark.parametrize(
    "body",
    [
        b'{"a": 1, "a": 2}',
        json.dumps(event()).replace('"value": 12.5', '"value": 12.5, "value": 99').encode(),
        json.dumps(event()).replace('"id": "e1"', '"id": "e1", "id": "e2"').encode(),
    ],
)
def test_duplicate_keys_are_refused(body: bytes) -> None:
    """Two values for one name in an object are refused, naming the key."""
    problem = refused(body)
    assert isinstance(problem, MalformedRequest)
    assert problem.extensions["code"] == "duplicate_key"


@pytest.mark.parametrize("literal", [b"NaN", b"Infinity", b"-Infinity", b"1" * 5000])
def test_non_json_numbers_are_malformed(literal: bytes) -> None:
    """NaN/Infinity are not JSON; a 5000-digit integer is refused, not an exception."""
    body = json.dumps(event()).encode().replace(b"12.5", literal)
    assert isinstance(refused(body), MalformedRequest)


@pytest.mark.parametrize("value", [True, "12", None, [1], {"v": 1}])
def test_a_value_must_be_a_json_number(value: Any) -> None:
    """`"value": true` and `"value": "12"` are not numbers."""
    body = event(data={"kpi_id": "kpi.coverage", "value": value, "as_of": "2024-03-31"})
    problem = refused(json.dumps(body).encode())
    assert isinstance(problem, InvalidEvent)
    assert "data.value" in fields(problem)


@pytest.mark.parametrize("as_of", ["2024-03-31T00:00:00", 1711843200, "20240331", "2024-3-31"])
def test_a_date_must_be_iso_text(as_of: Any) -> None:
    """as_of is YYYY-MM-DD text, not a timestamp or a date-time."""
    body = event(data={"kpi_id": "kpi.coverage", "value": 1, "as_of": as_of})
    assert "data.as_of" in fields(refused(json.dumps(body).encode()))


@pytest.mark.parametrize(
    "value",
    [{"a": 1}, [1, 2], 1.5, 2**31, -(2**31) - 1],
    ids=["object", "array", "frac", "big", "small"],
)
def test_extension_values_must_be_cloudevents_types(value: Any) -> None:
    """Only String, Integer (32-bit), Boolean (and the string-encoded types) are attributes."""
    problem = refused(json.dumps(event(myext=value)).encode())
    assert isinstance(problem, InvalidEvent)


@pytest.mark.parametrize("value", ["text", 7, -(2**31), True])
def test_extension_values_of_cloudevents_types_are_carried(value: Any) -> None:
    """A string, a 32-bit integer or a boolean extension is accepted and kept."""
    parsed = parsing.structured_event(json.dumps(event(myext=value)).encode())
    assert parsed.model_extra == {"myext": value}


@pytest.mark.parametrize(
    "source",
    [
        "/ministries/mic/",
        "/ministries//mic",
        "/ministries/mic//",
        "//ministries/mic",
        "/ministries/MIC",
        "/ministries/mic?x=1",
        "https://example.org/ministries/mic",
    ],
)
def test_only_the_canonical_source_is_accepted(source: str) -> None:
    """A ministry source is exactly /ministries/{code}: other spellings would bypass dedup."""
    problem = refused(json.dumps(event(source=source)).encode())
    assert isinstance(problem, InvalidEvent)
    assert "source" in fields(problem)


@pytest.mark.parametrize(
    "time", ["1733300000", "2024-04-01", "2024-04-01T09:00:00", "2024-04-01 09:00:00Z", 1733300000]
)
def test_time_must_be_rfc3339(time: Any) -> None:
    """A Unix timestamp or a time without offset is not an RFC 3339 `time`."""
    assert "time" in fields(refused(json.dumps(event(time=time)).encode()))


def test_time_and_subject_may_be_absent_in_structured_and_batch_mode() -> None:
    """CloudEvents 1.0 makes both OPTIONAL."""
    body = json.dumps(without("time", "subject")).encode()
    parsed = parsing.structured_event(body)
    assert parsed.time is None
    assert parsed.subject is None
    (item,) = parsing.batch_events(json.dumps([without("time", "subject")]).encode(), 10)
    assert not isinstance(item, parsing.Unparsed)
    assert item.time is None


def test_time_and_subject_may_be_absent_in_binary_mode() -> None:
    """Binary mode without ce-time and ce-subject is an event too."""
    headers = {
        "content-type": "application/json",
        "ce-specversion": "1.0",
        "ce-id": "e1",
        "ce-source": "/ministries/mic",
        "ce-type": "shinchoku.kpi.observed.v1",
    }
    parsed = parsing.binary_event(headers, json.dumps(event()["data"]).encode())
    assert parsed.time is None


@pytest.mark.parametrize(
    "content_type", ["application/json; charset=utf-8", "Application/JSON;charset=UTF-8"]
)
def test_media_type_parameters_are_accepted_in_structured_and_binary_mode(
    content_type: str,
) -> None:
    """`datacontenttype: application/json; charset=utf-8` is JSON (RFC 2046 parameters)."""
    parsed = parsing.structured_event(json.dumps(event(datacontenttype=content_type)).encode())
    assert parsed.datacontenttype == content_type
    headers = {
        "content-type": content_type,
        "ce-specversion": "1.0",
        "ce-id": "e1",
        "ce-source": "/ministries/mic",
        "ce-type": "shinchoku.kpi.observed.v1",
    }
    binary = parsing.binary_event(headers, json.dumps(event()["data"]).encode())
    assert binary.datacontenttype == content_type


@pytest.mark.parametrize("content_type", ["text/plain", "application/json; charset=latin1"])
def test_other_data_media_types_are_refused(content_type: str) -> None:
    """Data that is not UTF-8 JSON is refused."""
    problem = refused(json.dumps(event(datacontenttype=content_type)).encode())
    assert "datacontenttype" in fields(problem)


def test_utf8_with_a_bom_is_read_and_other_encodings_are_not() -> None:
    """A leading UTF-8 BOM is ignored (RFC 8259 allows it); bytes that are not UTF-8 are
    malformed."""
    assert loads_strict(b'\xef\xbb\xbf{"a": 1}') == {"a": 1}
    with pytest.raises(InvalidJsonError):
        loads_strict('{"a": 1}'.encode("utf-16"))
    with pytest.raises(InvalidJsonError):
        loads_strict(b'{"a": "\xc3\x28"}')

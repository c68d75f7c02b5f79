"""HTTP → CloudEvent, per the CloudEvents 1.0 HTTP protocol binding (structured, binary, batch).

- Structured mode: ``Content-Type: application/cloudevents+json``, the body is the whole event.
- Binary mode: attributes in ``ce-<name>`` headers (values percent-decoded as the binding
  requires), ``Content-Type`` is the data's (``application/json``), the body is the data.
- Batch mode: ``Content-Type: application/cloudevents-batch+json``, the body is a JSON array of
  structured events. An item that cannot be an event is answered in its own result, not by
  failing the batch.

JSON is read strictly in every mode (`shared.events.strict_json`): nesting deeper than
`MAX_JSON_DEPTH`, a duplicate key in an object, and the non-standard NaN/Infinity literals are
a 400 problem, never an exception.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from pydantic import TypeAdapter, ValidationError

from services.ingest.entrypoints.problems import (
    BatchTooLarge,
    InvalidEvent,
    UnknownEventType,
    malformed,
    unsupported,
)
from shared.events.cloudevents import (
    CLOUDEVENTS_BATCH_JSON,
    CLOUDEVENTS_JSON,
    CloudEvent,
    json_media_type_error,
)
from shared.events.contracts import (
    MINISTRY_EVENT_TYPES,
    KpiObservedEvent,
    MeasureAssessedEvent,
    MilestoneReportedEvent,
    MinistryEvent,
)
from shared.events.strict_json import InvalidJsonError, loads_strict
from shared.http.problems import FieldError, Problem

# CloudEvents 1.0: attribute names are 1-20 lower-case ASCII letters or digits.
_ATTRIBUTE_NAME = re.compile(r"^[a-z0-9]{1,20}$")
_EXTENSION_REASON = "attribute names are 1 to 20 lower-case letters or digits (CloudEvents 1.0)"
_NAME_REASON = {"data_base64": "binary data (data_base64) is not accepted: data must be JSON"}


_BATCH: TypeAdapter[list[KpiObservedEvent | MilestoneReportedEvent | MeasureAssessedEvent]] = (
    TypeAdapter(list[MinistryEvent])
)


@dataclass(frozen=True, slots=True)
class Unparsed:
    """A batch item that is not a valid event, with what can be told about it."""

    problem: Problem
    id: str | None
    source: str | None
    type: str | None


def media_type(content_type: str | None) -> str:
    return (content_type or "").split(";")[0].strip().lower()


def load_json(body: bytes) -> Any:
    try:
        return loads_strict(body)
    except InvalidJsonError as error:
        problem = malformed(f"the body is not valid JSON: {error}")
        problem.extensions["code"] = error.code
        raise problem from error


def event_from_attributes(attributes: Any, *, prefix: str = "") -> CloudEvent:
    if not isinstance(attributes, dict):
        raise InvalidEvent(
            "a CloudEvent must be a JSON object",
            errors=[FieldError(field=prefix.rstrip(".") or "(body)", reason="not an object")],
            extensions={"code": "schema"},
        )
    event_type = attributes.get("type")
    model = MINISTRY_EVENT_TYPES.get(event_type) if isinstance(event_type, str) else None
    if model is None:
        known = ", ".join(sorted(MINISTRY_EVENT_TYPES))
        raise UnknownEventType(
            f"unknown event type {event_type!r}",
            errors=[FieldError(field=f"{prefix}type", reason=f"must be one of: {known}")],
            extensions={"code": "unknown_type"},
        )
    bad_names = [
        FieldError(field=f"{prefix}{name}", reason=_NAME_REASON.get(name, _EXTENSION_REASON))
        for name in attributes
        if name != "data" and not _ATTRIBUTE_NAME.match(name)
    ]
    if bad_names:
        raise InvalidEvent(
            f"the {event_type} event is not valid", errors=bad_names, extensions={"code": "schema"}
        )
    try:
        return model.model_validate(attributes)
    except ValidationError as error:
        raise InvalidEvent(
            f"the {event_type} event is not valid",
            errors=[
                FieldError(
                    field=prefix + (".".join(str(p) for p in item["loc"]) or "(event)"),
                    reason=item["msg"],
                )
                for item in error.errors(include_url=False)
            ],
            extensions={"code": "schema"},
        ) from error


def structured_event(body: bytes) -> CloudEvent:
    # Parsed by the strict reader first (pydantic's own JSON parser keeps the last of two
    # duplicate keys), then validated.
    return event_from_attributes(load_json(body))


def binary_event(headers: Mapping[str, str], body: bytes) -> CloudEvent:
    """Binary mode: attributes in ``ce-`` headers, the body is the data."""
    content_type = headers.get("content-type")
    if content_type and (error := json_media_type_error(content_type)) is not None:
        raise unsupported(f"binary-mode {error}")
    attributes: dict[str, Any] = {
        name[3:].lower(): unquote(value)
        for name, value in headers.items()
        if name.lower().startswith("ce-")
    }
    if content_type:
        # The HTTP binding maps Content-Type to datacontenttype, parameters included.
        attributes["datacontenttype"] = content_type
    attributes["data"] = load_json(body) if body else None
    return event_from_attributes(attributes)


def batch_events(body: bytes, max_events: int) -> list[CloudEvent | Unparsed]:
    items = load_json(body)
    if not isinstance(items, list):
        raise malformed("a batch must be a JSON array of CloudEvents")
    if len(items) <= max_events:
        try:  # fast path: a batch of valid events, validated in one call
            return list(_BATCH.validate_python(items))
        except ValidationError:  # the slow path answers each item on its own
            pass
    if len(items) > max_events:
        detail = f"a batch holds at most {max_events} events; this one has {len(items)}"
        raise BatchTooLarge(
            detail,
            errors=[FieldError(field="(body)", reason=detail)],
            extensions={"code": "too_many_events"},
        )
    parsed: list[CloudEvent | Unparsed] = []
    for index, item in enumerate(items):
        try:
            parsed.append(event_from_attributes(item, prefix=f"[{index}]."))
        except Problem as problem:
            parsed.append(
                Unparsed(
                    problem,
                    id=_string(item, "id"),
                    source=_string(item, "source"),
                    type=_string(item, "type"),
                )
            )
    return parsed


def _string(item: Any, name: str) -> str | None:
    value = item.get(name) if isinstance(item, dict) else None
    return value if isinstance(value, str) else None


def is_structured(content_type: str | None) -> bool:
    return media_type(content_type) == CLOUDEVENTS_JSON


def is_batch(content_type: str | None) -> bool:
    return media_type(content_type) == CLOUDEVENTS_BATCH_JSON

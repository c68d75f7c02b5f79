"""HTTP → CloudEvent, per the CloudEvents HTTP protocol binding (structured, binary, batch)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from shared.events.cloudevents import CLOUDEVENTS_BATCH_JSON, CLOUDEVENTS_JSON, CloudEvent
from shared.events.contracts import MINISTRY_EVENT_TYPES
from shared.http.problems import (
    FieldError,
    MalformedRequest,
    UnsupportedMediaType,
    ValidationProblem,
)

MAX_EVENT_BYTES = 64 * 1024
MAX_BATCH_EVENTS = 500
MAX_BATCH_BYTES = 4 * 1024 * 1024


def media_type(content_type: str | None) -> str:
    return (content_type or "").split(";")[0].strip().lower()


def load_json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise MalformedRequest(f"the body is not valid JSON: {error}") from error


def event_from_attributes(attributes: Any, *, prefix: str = "") -> CloudEvent:
    if not isinstance(attributes, dict):
        raise ValidationProblem(
            "a CloudEvent must be a JSON object",
            errors=[FieldError(field=prefix or "(body)", reason="not an object")],
        )
    event_type = attributes.get("type")
    model = MINISTRY_EVENT_TYPES.get(event_type) if isinstance(event_type, str) else None
    if model is None:
        known = ", ".join(sorted(MINISTRY_EVENT_TYPES))
        raise ValidationProblem(
            f"unknown event type {event_type!r}",
            errors=[FieldError(field=f"{prefix}type", reason=f"must be one of: {known}")],
            extensions={"code": "unknown_type"},
        )
    try:
        return model.model_validate(attributes)
    except ValidationError as error:
        raise ValidationProblem(
            f"the {event_type} event is not valid",
            errors=[
                FieldError(field=prefix + ".".join(str(p) for p in item["loc"]), reason=item["msg"])
                for item in error.errors()
            ],
        ) from error


def structured_event(body: bytes) -> CloudEvent:
    return event_from_attributes(load_json(body))


def binary_event(headers: Mapping[str, str], body: bytes) -> CloudEvent:
    """Binary mode: attributes in ``ce-`` headers, the body is the data."""
    data_type = media_type(headers.get("content-type"))
    if data_type not in {"application/json", ""}:
        raise UnsupportedMediaType(f"binary-mode data must be application/json, not {data_type!r}")
    attributes: dict[str, Any] = {
        name[3:]: value for name, value in headers.items() if name.lower().startswith("ce-")
    }
    attributes["data"] = load_json(body) if body else None
    return event_from_attributes(attributes)


def batch_events(body: bytes) -> list[CloudEvent | ValidationProblem]:
    items = load_json(body)
    if not isinstance(items, list):
        raise ValidationProblem(
            "a batch must be a JSON array of CloudEvents",
            errors=[FieldError(field="(body)", reason="not an array")],
        )
    if len(items) > MAX_BATCH_EVENTS:
        raise ValidationProblem(
            f"a batch holds at most {MAX_BATCH_EVENTS} events; this one has {len(items)}",
            errors=[FieldError(field="(body)", reason=f"more than {MAX_BATCH_EVENTS} events")],
        )
    parsed: list[CloudEvent | ValidationProblem] = []
    for index, item in enumerate(items):
        try:
            parsed.append(event_from_attributes(item, prefix=f"[{index}]."))
        except ValidationProblem as problem:
            parsed.append(problem)
    return parsed


def is_structured(content_type: str | None) -> bool:
    return media_type(content_type) == CLOUDEVENTS_JSON


def is_batch(content_type: str | None) -> bool:
    return media_type(content_type) == CLOUDEVENTS_BATCH_JSON

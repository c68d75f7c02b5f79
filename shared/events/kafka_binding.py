"""CloudEvents Kafka protocol binding (1.0): encoding for our producers, decoding for consumers.

Shinchoku's own producers write **structured mode**: the record value is the whole event as JSON
(``content-type: application/cloudevents+json; charset=UTF-8``) and the record key is the
``partitionkey`` attribute (the KPI, milestone or measure id), so one KPI's events stay ordered on
one partition. Consumers accept both structured and **binary mode** (``ce_*`` headers, data in the
value), because some ministries write straight to Kafka with their own SDKs.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from shared.events.cloudevents import CLOUDEVENTS_JSON, CloudEvent
from shared.events.strict_json import InvalidJsonError, loads_strict

Headers = Sequence[tuple[str, bytes]]
STRUCTURED_CONTENT_TYPE = f"{CLOUDEVENTS_JSON}; charset=UTF-8"
MAX_RECORD_BYTES = 1024 * 1024


@dataclass(frozen=True, slots=True)
class EncodedRecord:
    key: bytes
    value: bytes
    headers: list[tuple[str, bytes]]


class UndecodableRecord(Exception):  # noqa: N818 - reads as a condition, like StopIteration
    """A record that can never be processed; `reason` says why (goes to the dead-letter topic)."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


def encode_structured(event: CloudEvent) -> EncodedRecord:
    body = json.dumps(event.to_json_dict(), ensure_ascii=False, separators=(",", ":"))
    return EncodedRecord(
        key=event.ordering_key.encode(),
        value=body.encode(),
        headers=[("content-type", STRUCTURED_CONTENT_TYPE.encode())],
    )


def _header(headers: Headers, name: str) -> str | None:
    for key, value in headers:
        if key.lower() == name:
            return value.decode("utf-8", errors="replace")
    return None


def record_to_attributes(value: bytes | None, headers: Headers) -> dict[str, Any]:
    """Turn a record into a CloudEvent attribute dict (structured or binary mode)."""
    if value is None:
        raise UndecodableRecord("empty_record", "the record has no value")
    if len(value) > MAX_RECORD_BYTES:
        raise UndecodableRecord("oversized_record", f"{len(value)} bytes > {MAX_RECORD_BYTES}")
    full_content_type = (_header(headers, "content-type") or "").strip()
    content_type = full_content_type.split(";")[0].strip().lower()
    try:
        body = loads_strict(value)
    except InvalidJsonError as error:
        raise UndecodableRecord("invalid_json", f"{error.code}: {error}") from error
    if content_type.startswith("application/cloudevents"):
        if not isinstance(body, dict):
            raise UndecodableRecord("invalid_structure", "a structured event must be an object")
        return body
    specversion = _header(headers, "ce_specversion")
    if specversion is None:
        # Neither mode: a bare JSON object with CloudEvents attributes is accepted as structured.
        if isinstance(body, dict) and "specversion" in body:
            return body
        raise UndecodableRecord(
            "not_a_cloudevent", "no content-type application/cloudevents+json and no ce_ headers"
        )
    attributes: dict[str, Any] = {
        key[3:]: raw.decode("utf-8", errors="replace")
        for key, raw in headers
        if key.lower().startswith("ce_")
    }
    if full_content_type:
        # Binary mode: the content-type is the data's, parameters included (RFC 2046); the
        # model accepts any application/json and refuses the rest.
        attributes["datacontenttype"] = full_content_type
    attributes["data"] = body
    return attributes


def decode_event(
    value: bytes | None, headers: Headers, event_types: Mapping[str, type[CloudEvent]]
) -> CloudEvent:
    attributes = record_to_attributes(value, headers)
    event_type = attributes.get("type")
    model = event_types.get(event_type) if isinstance(event_type, str) else None
    if model is None:
        raise UndecodableRecord(
            "unknown_type", f"type {event_type!r} is not one this topic carries"
        )
    try:
        return model.model_validate(attributes)
    except ValidationError as error:
        raise UndecodableRecord("schema_violation", summarise_validation_error(error)) from error


def summarise_validation_error(error: ValidationError, limit: int = 5) -> str:
    parts = []
    for item in error.errors()[:limit]:
        location = ".".join(str(piece) for piece in item["loc"])
        parts.append(f"{location}: {item['msg']}")
    return "; ".join(parts)

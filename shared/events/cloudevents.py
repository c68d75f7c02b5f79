"""The CloudEvents 1.0 envelope, as one pydantic base every Shinchoku event type extends.

Context attributes follow the CloudEvents 1.0 specification: ``id``, ``source``, ``specversion``
and ``type`` are required non-empty strings; ``subject`` and ``time`` are OPTIONAL (the item an
event is about is named in its ``data``; where a time is needed the receive time stands in).
``time`` is RFC 3339 text (a bare number is not a timestamp); ``datacontenttype`` is
``application/json``, with media-type parameters allowed (RFC 2046; a ``charset`` must be UTF-8,
RFC 8259). Extension attribute names are lower-case ASCII letters and digits, and their values
are of the CloudEvents type system only: in JSON a string (String, Binary, URI, URI-reference,
Timestamp), an integer (32-bit) or a boolean; a JSON object, array or fraction is refused.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, ClassVar, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    field_validator,
    model_validator,
)

CLOUDEVENTS_JSON = "application/cloudevents+json"
CLOUDEVENTS_BATCH_JSON = "application/cloudevents-batch+json"
JSON_MEDIA_TYPE = "application/json"

_ATTRIBUTE_NAME = re.compile(r"^[a-z0-9]{1,20}$")
# RFC 3339 `date-time` (section 5.6): full date, "T", time with seconds, a Z or numeric offset.
RFC3339 = re.compile(
    r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$", re.ASCII
)
CORE_ATTRIBUTES = frozenset(
    {"id", "source", "specversion", "type", "datacontenttype", "dataschema", "subject", "time"}
)
# Extensions this project understands; others are accepted and carried, never interpreted.
KNOWN_EXTENSIONS = frozenset({"partitionkey"})
INT32 = (-(2**31), 2**31 - 1)


def json_media_type_error(value: str) -> str | None:
    """Why `value` is not an ``application/json`` media type (None when it is). Parameters are
    legal (RFC 2046); JSON text is UTF-8 (RFC 8259), so a charset must say so."""
    kind, _, parameters = value.partition(";")
    if kind.strip().lower() != JSON_MEDIA_TYPE:
        return f"data must be {JSON_MEDIA_TYPE}, not {kind.strip()!r}"
    for parameter in parameters.split(";"):
        name, _, raw = parameter.partition("=")
        if name.strip().lower() == "charset" and raw.strip().strip('"').lower() not in {
            "utf-8",
            "utf8",
        }:
            return f"JSON data is UTF-8; charset {raw.strip()!r} is not accepted"
    return None


def extension_value_error(value: object) -> str | None:
    """Why `value` cannot be a CloudEvents attribute value in JSON (None when it can)."""
    if value is None or isinstance(value, (str, bool)):
        return None
    if isinstance(value, int):
        if INT32[0] <= value <= INT32[1]:
            return None
        return "an Integer attribute is a 32-bit signed integer (CloudEvents 1.0)"
    return (
        f"a {type(value).__name__} is not a CloudEvents attribute type: only String, Integer, "
        "Boolean, Binary, URI, URI-reference and Timestamp are (CloudEvents 1.0)"
    )


class CloudEvent(BaseModel):
    """A CloudEvent with JSON data. Subclasses pin ``type`` and the ``data`` model."""

    model_config = ConfigDict(frozen=True, extra="allow", str_strip_whitespace=False)

    TYPE: ClassVar[str] = ""

    specversion: Literal["1.0"] = Field(description="CloudEvents specification version.")
    id: str = Field(min_length=1, max_length=256, description="Unique per source.")
    source: str = Field(min_length=1, max_length=512, description="URI-reference of the producer.")
    type: str = Field(min_length=1, max_length=256)
    subject: str | None = Field(
        default=None,
        min_length=1,
        max_length=256,
        description="The KPI, milestone or measure (optional: `data` names it; when present it "
        "must be the same id).",
    )
    time: AwareDatetime | None = Field(
        default=None,
        description="When the event was produced (RFC 3339, with offset). Optional: the "
        "receive time stands in where a time is needed. At most a few minutes ahead of the "
        "receive time.",
    )
    datacontenttype: str = Field(
        default=JSON_MEDIA_TYPE,
        max_length=128,
        # Media types are case-insensitive; spelt out for JSON Schema's (ECMA-262) regexes.
        pattern=r"^[Aa][Pp][Pp][Ll][Ii][Cc][Aa][Tt][Ii][Oo][Nn]/[Jj][Ss][Oo][Nn][ \t]*(;.*)?$",
        description="application/json, media-type parameters allowed (RFC 2046).",
    )
    dataschema: str | None = None
    partitionkey: str | None = Field(
        default=None, description="Kafka record key (CloudEvents partitioning extension)."
    )
    data: Any = None
    # Where the consumer runner read the event from (shared.consumer.Arrival): not an attribute
    # of the event, never serialised; None for an event built in code.
    _arrival: Any = PrivateAttr(default=None)

    @field_validator("time", mode="before")
    @classmethod
    def _rfc3339(cls, value: object) -> object:
        # pydantic alone would take a Unix timestamp ("1733300000") for a datetime.
        if isinstance(value, str) and not RFC3339.match(value):
            raise ValueError("time must be an RFC 3339 timestamp, e.g. 2024-07-05T09:30:00+09:00")
        if value is not None and not isinstance(value, (str, datetime)):
            raise ValueError("time must be an RFC 3339 timestamp string")
        return value

    @field_validator("datacontenttype")
    @classmethod
    def _json_data(cls, value: str) -> str:
        error = json_media_type_error(value)
        if error is not None:
            raise ValueError(error)
        return value

    @model_validator(mode="after")
    def _check_extensions(self) -> CloudEvent:
        for name, value in (self.model_extra or {}).items():
            if not _ATTRIBUTE_NAME.match(name):
                raise ValueError(
                    f"extension attribute name {name!r} must be 1-20 lower-case letters or digits"
                )
            error = extension_value_error(value)
            if error is not None:
                raise ValueError(f"extension attribute {name!r}: {error}")
        return self

    @property
    def dedup_key(self) -> str:
        """Two events are the same event when their source and id are equal (CloudEvents 1.0)."""
        return f"{self.source}\x1f{self.id}"

    @property
    def ordering_key(self) -> str:
        return self.partitionkey or self.subject or self.id

    def to_json_dict(self) -> dict[str, Any]:
        """Structured-mode JSON: absent optional attributes are omitted, `data` is kept whole
        (a null inside data is information, e.g. a first status change has no previous one)."""
        body = self.model_dump(mode="json", exclude_none=True, exclude={"data"})
        body["data"] = self.model_dump(mode="json", include={"data"})["data"]
        return body


def time_now_utc() -> datetime:
    from datetime import UTC

    return datetime.now(UTC)

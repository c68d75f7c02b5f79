"""The CloudEvents 1.0 envelope, as one pydantic base every Shinchoku event type extends.

Required context attributes follow the CloudEvents 1.0 specification: ``id``, ``source``,
``specversion`` and ``type`` are non-empty strings; ``time`` is RFC 3339; extension attribute names
are lower-case ASCII letters and digits. Shinchoku additionally requires ``subject`` and ``time``.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, ClassVar, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, PrivateAttr, model_validator

CLOUDEVENTS_JSON = "application/cloudevents+json"
CLOUDEVENTS_BATCH_JSON = "application/cloudevents-batch+json"

_ATTRIBUTE_NAME = re.compile(r"^[a-z0-9]{1,20}$")
CORE_ATTRIBUTES = frozenset(
    {"id", "source", "specversion", "type", "datacontenttype", "dataschema", "subject", "time"}
)
# Extensions this project understands; others are accepted and carried, never interpreted.
KNOWN_EXTENSIONS = frozenset({"partitionkey"})


class CloudEvent(BaseModel):
    """A CloudEvent with JSON data. Subclasses pin ``type`` and the ``data`` model."""

    model_config = ConfigDict(frozen=True, extra="allow", str_strip_whitespace=False)

    TYPE: ClassVar[str] = ""

    specversion: Literal["1.0"] = Field(description="CloudEvents specification version.")
    id: str = Field(min_length=1, max_length=256, description="Unique per source.")
    source: str = Field(min_length=1, max_length=512, description="URI-reference of the producer.")
    type: str = Field(min_length=1, max_length=256)
    subject: str = Field(min_length=1, max_length=256, description="The KPI, milestone or measure.")
    time: AwareDatetime = Field(description="When the event was produced (RFC 3339, with offset).")
    datacontenttype: Literal["application/json"] = "application/json"
    dataschema: str | None = None
    partitionkey: str | None = Field(
        default=None, description="Kafka record key (CloudEvents partitioning extension)."
    )
    data: Any = None
    # Where the consumer runner read the event from (shared.consumer.Arrival): not an attribute
    # of the event, never serialised; None for an event built in code.
    _arrival: Any = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _check_extensions(self) -> CloudEvent:
        for name in self.model_extra or {}:
            if not _ATTRIBUTE_NAME.match(name):
                raise ValueError(
                    f"extension attribute name {name!r} must be 1-20 lower-case letters or digits"
                )
        return self

    @property
    def dedup_key(self) -> str:
        """Two events are the same event when their source and id are equal (CloudEvents 1.0)."""
        return f"{self.source}\x1f{self.id}"

    @property
    def ordering_key(self) -> str:
        return self.partitionkey or self.subject

    def to_json_dict(self) -> dict[str, Any]:
        """Structured-mode JSON: absent optional attributes are omitted, `data` is kept whole
        (a null inside data is information, e.g. a first status change has no previous one)."""
        body = self.model_dump(mode="json", exclude_none=True, exclude={"data"})
        body["data"] = self.model_dump(mode="json", include={"data"})["data"]
        return body


def time_now_utc() -> datetime:
    from datetime import UTC

    return datetime.now(UTC)

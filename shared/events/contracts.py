"""Shinchoku's event contracts: the single definition used by the producer and every consumer.

Ministry events (topic ``shinchoku.events.v1``):
  - ``shinchoku.kpi.observed.v1``        a KPI value as of a date
  - ``shinchoku.milestone.reported.v1``  progress on a dated deliverable
  - ``shinchoku.measure.assessed.v1``    the ministry's own rating of a measure
  - ``shinchoku.item.owners_changed.v1`` who may report an item changed at run time (published
                                          by ingest, which owns the ownership record; keyed by
                                          the item id, so it is ordered among the item's events)
Status events (topic ``shinchoku.status.v1``):
  - ``shinchoku.kpi.status_changed.v1``  the kpi service's computed status changed
  - ``shinchoku.measure.divergence_changed.v1``  a ministry's self-assessment of a measure and
    the measure's computed status began, changed or ceased to diverge
"""

from __future__ import annotations

import math
import re
from datetime import date, datetime
from enum import StrEnum
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    TypeAdapter,
    field_validator,
)

from shared.events.cloudevents import CloudEvent

MINISTRY_SOURCE_PREFIX = "/ministries/"
# The one spelling of a ministry's source: a trailing or doubled slash would be another source to
# CloudEvents, and so another event to deduplication.
MINISTRY_SOURCE = re.compile(r"^/ministries/([a-z][a-z0-9_]{0,63})$", re.ASCII)
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$", re.ASCII)


def _json_number(value: object) -> object:
    """A number is a JSON number: neither a boolean nor a numeric string."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError("must be a JSON number")
    return value


def _iso_date(value: object) -> object:
    """A date is `YYYY-MM-DD` text (not a timestamp, not a date-time)."""
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if isinstance(value, str) and _ISO_DATE.match(value):
        return value
    raise ValueError("must be a date as YYYY-MM-DD")


JsonNumber = Annotated[float, BeforeValidator(_json_number)]
IsoDate = Annotated[date, BeforeValidator(_iso_date)]

# The one source kpi accepts an ownership change from (docs/contracts/README.md, its limit).
INGEST_SOURCE = "/services/ingest"
OWNERS_EVENT_ID_PREFIX = "owners:"


class _Data(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class KpiObserved(_Data):
    kpi_id: str = Field(min_length=1, max_length=128, examples=["kpi.5g-population-coverage"])
    value: JsonNumber = Field(
        description="The observed value, in the KPI's unit (a JSON number).", examples=[93.2]
    )
    as_of: IsoDate = Field(description="The date the value describes (not when it was sent).")
    note: str | None = Field(default=None, max_length=4000)

    @field_validator("value")
    @classmethod
    def _finite(cls, value: float) -> float:
        if not math.isfinite(value):
            raise ValueError("value must be a finite number")
        return value


class MilestoneState(StrEnum):
    NOT_STARTED = "not_started"
    IN_PROGRESS = "in_progress"
    DONE = "done"
    BLOCKED = "blocked"


class MilestoneReported(_Data):
    milestone_id: str = Field(min_length=1, max_length=128)
    state: MilestoneState
    percent_complete: JsonNumber = Field(ge=0, le=100)
    expected_completion: IsoDate | None = None
    as_of: IsoDate
    note: str | None = Field(default=None, max_length=4000)


class MeasureRating(StrEnum):
    ON_TRACK = "on_track"
    AT_RISK = "at_risk"
    OFF_TRACK = "off_track"


class MeasureAssessed(_Data):
    measure_id: str = Field(min_length=1, max_length=128)
    rating: MeasureRating
    as_of: IsoDate
    narrative: str | None = Field(default=None, max_length=10_000)


class Status(StrEnum):
    ACHIEVED = "achieved"
    ON_TRACK = "on_track"
    AT_RISK = "at_risk"
    OFF_TRACK = "off_track"
    OVERDUE = "overdue"
    STALE = "stale"
    NO_DATA = "no_data"
    TARGET_PENDING = "target_pending"


# Most severe first: the order a measure's "worst child" and an alert's "slip" are read in.
STATUS_SEVERITY_ORDER: tuple[Status, ...] = (
    Status.OVERDUE,
    Status.OFF_TRACK,
    Status.STALE,
    Status.AT_RISK,
    Status.NO_DATA,
    Status.TARGET_PENDING,
    Status.ON_TRACK,
    Status.ACHIEVED,
)
BAD_STATUSES = frozenset({Status.AT_RISK, Status.OFF_TRACK, Status.OVERDUE, Status.STALE})
GOOD_STATUSES = frozenset({Status.ON_TRACK, Status.ACHIEVED})


def status_severity(status: Status) -> int:
    """Higher is worse."""
    return len(STATUS_SEVERITY_ORDER) - STATUS_SEVERITY_ORDER.index(status)


class KpiStatusChanged(_Data):
    kpi_id: str
    kind: Literal["kpi", "milestone"]
    measure_id: str
    ministries: list[str]
    previous_status: Status | None
    status: Status
    # The bad-status episode this change opens, continues or (on recovery) closes.
    episode_id: str | None
    evaluated_on: date
    explanation: dict[str, Any]


class DivergenceLevel(StrEnum):
    """How far a ministry's self-assessment is more optimistic than the computed status."""

    NONE = "none"
    MINOR = "minor"
    MAJOR = "major"
    NOT_COMPARABLE = "not_comparable"


DIVERGING_LEVELS = frozenset({DivergenceLevel.MINOR, DivergenceLevel.MAJOR})


class MeasureDivergenceChanged(_Data):
    """A measure's divergence episode opened (self-assessment and computed status diverge),
    changed level, or closed (they agree again)."""

    measure_id: str
    ministries: list[str]
    self_assessment: MeasureRating | None
    assessed_as_of: date | None
    computed_status: Status
    previous_divergence: DivergenceLevel | None
    divergence: DivergenceLevel
    # The divergence episode this change opens, continues or (back to none) closes.
    episode_id: str
    evaluated_on: date

    @property
    def opens(self) -> bool:
        return self.divergence in DIVERGING_LEVELS and (
            self.previous_divergence not in DIVERGING_LEVELS
        )


class ItemOwnersChanged(_Data):
    """An item's owners changed at run time (shared.catalogue.overrides): set or reset."""

    item_id: str = Field(min_length=1, max_length=128, examples=["kpi.5g-population-coverage"])
    action: Literal["set", "reset"] = Field(
        description="set: an override; reset: back to the catalogue release's owners"
    )
    owners: list[str] = Field(
        min_length=1,
        max_length=30,
        description="The ministry codes that may report the item after the change.",
    )
    change_id: str = Field(
        min_length=1, max_length=64, description="The change's id in ingest's history."
    )
    reason: str = Field(max_length=500)
    changed_by: str = Field(max_length=200)
    changed_at: datetime


class MinistryCloudEvent(CloudEvent):
    """An event a ministry sends: its source is exactly ``/ministries/{code}``."""

    source: str = Field(
        min_length=1,
        max_length=512,
        pattern=MINISTRY_SOURCE.pattern,
        description="Exactly `/ministries/{code}`, the reporting ministry.",
        examples=["/ministries/digital"],
    )


class KpiObservedEvent(MinistryCloudEvent):
    TYPE: ClassVar[str] = "shinchoku.kpi.observed.v1"
    type: Literal["shinchoku.kpi.observed.v1"]
    data: KpiObserved


class MilestoneReportedEvent(MinistryCloudEvent):
    TYPE: ClassVar[str] = "shinchoku.milestone.reported.v1"
    type: Literal["shinchoku.milestone.reported.v1"]
    data: MilestoneReported


class MeasureAssessedEvent(MinistryCloudEvent):
    TYPE: ClassVar[str] = "shinchoku.measure.assessed.v1"
    type: Literal["shinchoku.measure.assessed.v1"]
    data: MeasureAssessed


class KpiStatusChangedEvent(CloudEvent):
    TYPE: ClassVar[str] = "shinchoku.kpi.status_changed.v1"
    type: Literal["shinchoku.kpi.status_changed.v1"]
    # The kpi service always sets it, and alerts orders a KPI's changes by it.
    time: AwareDatetime = Field(description="When the kpi service computed the change (RFC 3339).")
    data: KpiStatusChanged


class ItemOwnersChangedEvent(CloudEvent):
    TYPE: ClassVar[str] = "shinchoku.item.owners_changed.v1"
    type: Literal["shinchoku.item.owners_changed.v1"]
    data: ItemOwnersChanged


MinistryEvent = Annotated[
    KpiObservedEvent | MilestoneReportedEvent | MeasureAssessedEvent, Field(discriminator="type")
]
MINISTRY_EVENT_TYPES: dict[str, type[CloudEvent]] = {
    cls.TYPE: cls for cls in (KpiObservedEvent, MilestoneReportedEvent, MeasureAssessedEvent)
}


class MeasureDivergenceChangedEvent(CloudEvent):
    TYPE: ClassVar[str] = "shinchoku.measure.divergence_changed.v1"
    type: Literal["shinchoku.measure.divergence_changed.v1"]
    data: MeasureDivergenceChanged


STATUS_EVENT_TYPES: dict[str, type[CloudEvent]] = {
    KpiStatusChangedEvent.TYPE: KpiStatusChangedEvent,
    MeasureDivergenceChangedEvent.TYPE: MeasureDivergenceChangedEvent,
}
# Also on the events topic, from ingest (never accepted from a ministry over HTTP).
OWNERSHIP_EVENT_TYPES: dict[str, type[CloudEvent]] = {
    ItemOwnersChangedEvent.TYPE: ItemOwnersChangedEvent
}
ALL_EVENT_TYPES: dict[str, type[CloudEvent]] = {
    **MINISTRY_EVENT_TYPES,
    **OWNERSHIP_EVENT_TYPES,
    **STATUS_EVENT_TYPES,
}

ministry_event_adapter: TypeAdapter[
    KpiObservedEvent | MilestoneReportedEvent | MeasureAssessedEvent
] = TypeAdapter(MinistryEvent)


def subject_id(event: CloudEvent) -> str:
    """The catalogue id an event is about, from its data (the authority) rather than `subject`."""
    data = event.data
    if isinstance(data, KpiObserved):
        return data.kpi_id
    if isinstance(data, MilestoneReported):
        return data.milestone_id
    if isinstance(data, MeasureAssessed):
        return data.measure_id
    if isinstance(data, KpiStatusChanged):
        return data.kpi_id
    if isinstance(data, MeasureDivergenceChanged):
        return data.measure_id
    if isinstance(data, ItemOwnersChanged):
        return data.item_id
    return event.subject or ""


def ministry_code_of(source: str) -> str | None:
    """`/ministries/mic` -> `mic`; None for any other source (`/ministries/mic/` included)."""
    match = MINISTRY_SOURCE.match(source)
    return match.group(1) if match else None


def new_status_event(
    change: KpiStatusChanged, *, event_id: str, time: datetime, source: str = "/services/kpi"
) -> KpiStatusChangedEvent:
    return KpiStatusChangedEvent(
        specversion="1.0",
        id=event_id,
        source=source,
        type="shinchoku.kpi.status_changed.v1",
        subject=change.kpi_id,
        time=time,
        partitionkey=change.kpi_id,
        data=change,
    )


def owners_changed_event_id(change_id: str) -> str:
    """The event id of an ownership change: derived from the change, so publishing it again
    (after a failed attempt) is the same event, recognised by source + id."""
    return f"{OWNERS_EVENT_ID_PREFIX}{change_id}"


def new_owners_changed_event(
    change: ItemOwnersChanged, *, time: datetime, source: str = INGEST_SOURCE
) -> ItemOwnersChangedEvent:
    return ItemOwnersChangedEvent(
        specversion="1.0",
        id=owners_changed_event_id(change.change_id),
        source=source,
        type="shinchoku.item.owners_changed.v1",
        subject=change.item_id,
        time=time,
        # Keyed like the item's ministry events: same partition, ordered among them.
        partitionkey=change.item_id,
        data=change,
    )

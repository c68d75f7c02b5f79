"""Silences: time-bounded mutes and recurring quiet hours (Japan time). Pure.

A silence names what it mutes (a subscription, ministries, measures, KPIs; the dimensions it
names are combined with AND, the values in one list with OR, nothing named mutes everything) and
when: either between ``starts_at`` and ``ends_at``, or during recurring **quiet hours** given as
local times in Asia/Tokyo (e.g. 22:00 to 07:00, optionally only on some weekdays), themselves
optionally bounded by ``starts_at``/``ends_at``. A notification that a silence mutes is recorded
and held back until no matching silence is active any more (`muted_until`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated
from zoneinfo import ZoneInfo

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, WithJsonSchema, model_validator

JAPAN = ZoneInfo("Asia/Tokyo")
# Chained silences (quiet hours back to back with another mute...) are followed this far ahead
# at most; a notification muted for longer is simply re-examined then.
HORIZON = timedelta(days=31)


# A wall-clock time without offset. JSON Schema's `format: time` (what pydantic documents for
# `time`) is RFC 3339's full-time, which requires an offset: the answers ("22:00:00") did not
# match their own schema, and an offset is refused on input.
LocalTime = Annotated[
    time,
    WithJsonSchema(
        {
            "type": "string",
            "pattern": r"^([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9](\.[0-9]{1,6})?)?$",
            "examples": ["22:00"],
        }
    ),
]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class SilenceScope(_Frozen):
    """What a silence mutes."""

    subscription_id: str | None = Field(
        default=None, description="Only this subscription's notifications (default: all)."
    )
    ministries: list[str] = Field(default_factory=list, examples=[["mic"]])
    measures: list[str] = Field(default_factory=list)
    kpis: list[str] = Field(default_factory=list, description="KPI or milestone ids")


class QuietHours(_Frozen):
    """A daily quiet period in Japan time; `end` before `start` spans midnight."""

    start: LocalTime = Field(
        description="Local time (Asia/Tokyo) the quiet period starts, e.g. 22:00"
    )
    end: LocalTime = Field(description="Local time (Asia/Tokyo) it ends, e.g. 07:00")
    weekdays: list[int] = Field(
        default_factory=lambda: list(range(7)),
        min_length=1,
        description="Days (0 = Monday … 6 = Sunday, Japan time) on which a quiet period starts.",
    )

    @model_validator(mode="after")
    def _check(self) -> QuietHours:
        if self.start == self.end:
            raise ValueError("quiet hours need a start different from their end")
        if any(day < 0 or day > 6 for day in self.weekdays):
            raise ValueError("weekdays are 0 (Monday) to 6 (Sunday)")
        if self.start.tzinfo is not None or self.end.tzinfo is not None:
            raise ValueError("quiet hours are local Japan times, given without an offset")
        return self


class Silence(_Frozen):
    id: str
    scope: SilenceScope = Field(default_factory=SilenceScope)
    starts_at: AwareDatetime | None = None
    ends_at: AwareDatetime | None = None
    quiet_hours: QuietHours | None = None

    @model_validator(mode="after")
    def _check(self) -> Silence:
        if self.quiet_hours is None and self.ends_at is None:
            raise ValueError("a silence without quiet hours needs ends_at")
        if self.starts_at and self.ends_at and self.ends_at <= self.starts_at:
            raise ValueError("ends_at must be after starts_at")
        return self


class Target(_Frozen):
    """What a notification is about, as silences see it."""

    subscription_id: str
    kpi_id: str
    measure_id: str
    ministries: list[str]


def scope_matches(scope: SilenceScope, target: Target) -> bool:
    if scope.subscription_id is not None and scope.subscription_id != target.subscription_id:
        return False
    if scope.ministries and not set(scope.ministries) & set(target.ministries):
        return False
    if scope.measures and target.measure_id not in scope.measures:
        return False
    return not scope.kpis or target.kpi_id in scope.kpis


def _quiet_period_around(quiet: QuietHours, at: datetime) -> tuple[datetime, datetime] | None:
    """The quiet period containing `at`, as aware datetimes, or None."""
    local = at.astimezone(JAPAN)
    for start_day in (local.date() - timedelta(days=1), local.date()):
        if start_day.weekday() not in quiet.weekdays:
            continue
        start = _local(start_day, quiet.start)
        end_day = start_day if quiet.end > quiet.start else start_day + timedelta(days=1)
        end = _local(end_day, quiet.end)
        if start <= at < end:
            return start, end
    return None


def _local(day: date, clock: time) -> datetime:
    return datetime.combine(day, clock, tzinfo=JAPAN)


def active_until(silence: Silence, at: datetime) -> datetime | None:
    """If `silence` is active at `at`, the instant it stops being active; else None."""
    if silence.starts_at is not None and at < silence.starts_at:
        return None
    if silence.ends_at is not None and at >= silence.ends_at:
        return None
    if silence.quiet_hours is None:
        assert silence.ends_at is not None  # validated
        return silence.ends_at
    period = _quiet_period_around(silence.quiet_hours, at)
    if period is None:
        return None
    end = period[1]
    if silence.ends_at is not None and silence.ends_at < end:
        end = silence.ends_at
    return end.astimezone(UTC)


def is_active(silence: Silence, at: datetime) -> bool:
    return active_until(silence, at) is not None


def muting(silences: Iterable[Silence], target: Target, at: datetime) -> list[Silence]:
    """The silences that mute `target` at `at`."""
    return [s for s in silences if scope_matches(s.scope, target) and is_active(s, at)]


def muted_until(silences: Sequence[Silence], target: Target, at: datetime) -> datetime | None:
    """None when `target` is not muted at `at`; else the first instant at which no matching
    silence is active any more (following silences that take over from one another), or an
    instant at least HORIZON ahead when the mute lasts longer than that."""
    relevant = [s for s in silences if scope_matches(s.scope, target)]
    ends = [end for s in relevant if (end := active_until(s, at)) is not None]
    if not ends:
        return None
    moment = max(ends)
    while moment - at < HORIZON:
        ends = [end for s in relevant if (end := active_until(s, moment)) is not None]
        if not ends:
            return moment
        moment = max(ends)
    return moment


def still_in_force(silence: Silence, now: datetime) -> bool:
    """Whether a silence can still mute anything at or after `now` (else it is history)."""
    return silence.ends_at is None or silence.ends_at > now

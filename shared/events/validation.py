"""What makes a ministry event acceptable beyond its schema: the one set of checks every trust
boundary runs (ingest before it publishes, the kpi consumer on every record it reads, whatever
path the record took to Kafka). Pure: no I/O, the time is passed in.

Inputs, all supplied by the caller:
- the event, already valid against its schema (`shared.events.contracts`: strict types, a
  canonical ``/ministries/{code}`` source, RFC 3339 `time`);
- the facts of the catalogue item it names (`ItemFacts`, None when the id is not in the
  catalogue), from `facts_from_catalogue`;
- the item's owners: the set of ministry codes that may report on it, from the caller's owners
  lookup (`owners_from_catalogue` reads the catalogue document; a different ownership model
  plugs in by passing its own set). Any listed owner may report;
- `now`: the receive time at ingest, the processing time in kpi.

See docs/trust-model.md for who is trusted for what.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Any, Literal

from shared.events.cloudevents import CloudEvent
from shared.events.contracts import (
    KpiObserved,
    MeasureAssessed,
    MilestoneReported,
    ministry_code_of,
)

# A ministry's as_of may be a day ahead of our UTC date (Japan is UTC+9).
AS_OF_AHEAD = timedelta(days=1)
# A sender's clock may run this far ahead of ours (ingest's setting `max_time_ahead_s`).
TIME_AHEAD = timedelta(minutes=5)
# The as_of floor: this many years before the item's era (its baseline date or, without one,
# its first deadline). The 2022 plan's baselines are 2019-2021, so history from ~2010 on is
# accepted; 0001-01-01 (which would become a KPI's plan start) is not.
ERA_YEARS = 10
# The floor for an item with neither a baseline date nor a deadline (measures).
PLAN_ERA_FLOOR = date(2010, 1, 1)
# No KPI of the plan comes near this in its unit (JPY_100m, persons, %); a value beyond it is
# a mistake or an attack (the forecast's arithmetic must stay finite).
MAX_ABS_VALUE = 1e15


class UnitKind(StrEnum):
    """How a unit bounds a value."""

    PERCENT = "percent"  # 0..100
    COUNT = "count"  # a non-negative whole number
    MONEY = "money"  # non-negative
    SIGNED = "signed"  # any finite value (changes in points)
    QUANTITY = "quantity"  # any other unit: non-negative


PERCENT_UNITS = frozenset({"%", "percent", "％"})
SIGNED_UNITS = frozenset({"", "pt", "points", "ポイント"})
COUNT_UNITS = frozenset(
    {
        "persons",
        "persons_per_year",
        "people",
        "companies",
        "regions",
        "municipalities",
        "prefectures",
        "organisations",
        "organizations",
        "base_stations",
        "stations",
        "systems",
        "services",
        "procedures",
        "cases",
        "items",
        "件",
        "人",
        "社",
        "団体",
    }
)


def unit_kind(unit: str | None) -> UnitKind:
    unit = (unit or "").strip()
    if unit in PERCENT_UNITS:
        return UnitKind.PERCENT
    if unit in SIGNED_UNITS:
        return UnitKind.SIGNED
    if unit.upper().startswith("JPY") or unit.endswith("円"):
        return UnitKind.MONEY
    if unit in COUNT_UNITS:
        return UnitKind.COUNT
    return UnitKind.QUANTITY


def value_problem(value: float, unit: str | None) -> str | None:
    """Why `value` is impossible in `unit` (None when it is possible)."""
    if not math.isfinite(value) or abs(value) > MAX_ABS_VALUE:
        return f"{value} is not a finite number within ±{MAX_ABS_VALUE:g}"
    kind = unit_kind(unit)
    if kind is UnitKind.PERCENT and not 0 <= value <= 100:
        return f"{value} is impossible for a percentage (0 to 100)"
    if kind is UnitKind.COUNT and (value < 0 or not value.is_integer()):
        return f"{value} is impossible for a count of {unit}: a non-negative whole number"
    if kind in {UnitKind.MONEY, UnitKind.QUANTITY} and value < 0:
        return f"{value} is negative; the unit {unit!r} cannot be"
    return None


@dataclass(frozen=True, slots=True)
class Violation:
    field: str
    reason: str
    code: str


@dataclass(frozen=True, slots=True)
class ItemFacts:
    """What the checks need to know of a catalogue item (KPI, milestone or measure)."""

    id: str
    kind: Literal["kpi", "milestone", "measure"]
    unit: str | None = None
    retired: bool = False
    as_of_floor: date = PLAN_ERA_FLOOR


@dataclass(frozen=True, slots=True)
class Rules:
    """The tolerances, as settings may change them."""

    time_ahead: timedelta = TIME_AHEAD
    as_of_ahead: timedelta = AS_OF_AHEAD
    # Ingest refuses reports on a retired entry; the kpi consumer does not, because an event
    # ingest accepted before the retirement must still be recorded against its definition.
    refuse_retired: bool = True


DEFAULT_RULES = Rules()


def _date(value: Any) -> date | None:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value[:10])
        except ValueError:
            return None
    return None


def as_of_floor(era: date | None) -> date:
    """The earliest plausible as_of for an item whose era (baseline or first deadline) is `era`."""
    if era is None:
        return PLAN_ERA_FLOOR
    return min(date(max(era.year - ERA_YEARS, 1), 1, 1), PLAN_ERA_FLOOR)


def facts_from_catalogue(
    document: Mapping[str, Any], kind: Literal["item", "measure"] = "item"
) -> ItemFacts:
    """The facts of a catalogue document as `shared.catalogue_store` holds it."""
    if kind == "measure":
        return ItemFacts(
            id=str(document.get("_id") or document.get("id")),
            kind="measure",
            retired=document.get("state") == "retired",
        )
    item_kind = document.get("kind")
    baseline = document.get("baseline")
    era = _date(baseline.get("as_of")) if isinstance(baseline, Mapping) else None
    if era is None:
        deadlines = [
            d
            for t in document.get("targets") or ()
            if isinstance(t, Mapping) and (d := _date(t.get("deadline"))) is not None
        ]
        era = min(deadlines) if deadlines else None
    return ItemFacts(
        id=str(document.get("_id") or document.get("id")),
        kind="milestone" if item_kind == "milestone" else "kpi",
        unit=document.get("unit"),
        retired=document.get("state") == "retired",
        as_of_floor=as_of_floor(era),
    )


def owners_from_catalogue(document: Mapping[str, Any] | None) -> frozenset[str]:
    """The ministries a catalogue document lists as responsible (any of them may report)."""
    if document is None:
        return frozenset()
    return frozenset(str(code) for code in document.get("ministries") or ())


def target_of(event: CloudEvent) -> tuple[str, str, Literal["kpi", "milestone", "measure"]]:
    """(the catalogue id an event is about, the field naming it, the kind of item it needs)."""
    data = event.data
    if isinstance(data, KpiObserved):
        return data.kpi_id, "data.kpi_id", "kpi"
    if isinstance(data, MilestoneReported):
        return data.milestone_id, "data.milestone_id", "milestone"
    if isinstance(data, MeasureAssessed):
        return data.measure_id, "data.measure_id", "measure"
    raise TypeError(f"{event.type} is not a ministry event")


def check_event(
    event: CloudEvent,
    *,
    item: ItemFacts | None,
    owners: AbstractSet[str],
    now: datetime,
    received_at: datetime | None = None,
    rules: Rules = DEFAULT_RULES,
) -> list[Violation]:
    """Every reason the event cannot be accepted (empty when it can).

    `now` is the date rules' reference (as_of); `received_at` (default `now`) is the real time
    the event was received, the reference of `time`: they differ where a service runs on a
    simulated clock (the demo's kpi service) while senders stamp real time.
    """
    data = event.data
    violations: list[Violation] = []
    target_id, field, kind = target_of(event)
    received_at = received_at or now
    if event.time is not None and event.time > received_at + rules.time_ahead:
        violations.append(
            Violation(
                "time",
                f"time {event.time.isoformat()} is more than "
                f"{int(rules.time_ahead.total_seconds())} s ahead of the receive time "
                f"{received_at.isoformat()}",
                "time_in_future",
            )
        )
    as_of: date = data.as_of
    if as_of > now.date() + rules.as_of_ahead:
        violations.append(Violation("data.as_of", f"{as_of} is in the future", "as_of_in_future"))
    if event.partitionkey is not None and event.partitionkey != target_id:
        violations.append(
            Violation(
                "partitionkey",
                f"partitionkey {event.partitionkey!r} must be the {field} {target_id!r} "
                "(it is the Kafka record key) or be left out",
                "partitionkey_mismatch",
            )
        )
    if event.subject is not None and event.subject != target_id:
        violations.append(
            Violation(
                "subject",
                f"subject {event.subject!r} differs from {field} {target_id!r}",
                "subject_mismatch",
            )
        )
    if item is None:
        violations.append(Violation(field, f"{target_id!r} is not in the catalogue", "unknown_id"))
        return violations
    if item.retired and rules.refuse_retired:
        violations.append(
            Violation(field, f"{target_id!r} is retired from the catalogue", "retired_id")
        )
    ministry = ministry_code_of(event.source)
    if ministry is None or ministry not in owners:
        violations.append(
            Violation(
                "source",
                f"ministry {ministry or event.source!r} is not responsible for {target_id!r}; "
                f"it may be reported by: {', '.join(sorted(owners)) or 'no ministry'}",
                "wrong_ministry",
            )
        )
    if item.kind != kind:
        violations.append(
            Violation(field, f"{target_id!r} is a {item.kind}, not a {kind}", "wrong_kind")
        )
    if as_of < item.as_of_floor:
        violations.append(
            Violation(
                "data.as_of",
                f"{as_of} is before {item.as_of_floor}, the earliest plausible date for "
                f"{target_id!r} ({ERA_YEARS} years before its baseline era)",
                "as_of_too_early",
            )
        )
    if isinstance(data, KpiObserved) and item.kind == "kpi":
        problem = value_problem(data.value, item.unit)
        if problem is not None:
            violations.append(Violation("data.value", problem, "impossible_value"))
    return violations


# Which violation names an event's problem when it has several: the most fundamental first.
PRIORITY = (
    "source_not_key_ministry",
    "wrong_ministry",
    "unknown_id",
    "retired_id",
    "wrong_kind",
    "subject_mismatch",
    "partitionkey_mismatch",
    "impossible_value",
    "as_of_in_future",
    "as_of_too_early",
    "time_in_future",
)


def by_priority(violations: Sequence[Violation]) -> tuple[Violation, ...]:
    """The violations, the one that gives an event's problem its type first (stable order)."""
    rank = {code: index for index, code in enumerate(PRIORITY)}
    return tuple(sorted(violations, key=lambda v: rank.get(v.code, len(PRIORITY))))

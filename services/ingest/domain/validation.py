"""What makes a ministry event acceptable, beyond its schema. Pure: no I/O, time passed in."""

from __future__ import annotations

from collections.abc import Mapping, Sequence, Set
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from shared.events.cloudevents import CloudEvent
from shared.events.contracts import KpiObserved, MeasureAssessed, MilestoneReported

# A ministry's clock may run a little ahead of ours (time zones: Japan is UTC+9).
FUTURE_TOLERANCE = timedelta(days=1)
PERCENT_UNITS = frozenset({"%", "percent", "％"})


@dataclass(frozen=True, slots=True)
class Violation:
    field: str
    reason: str
    code: str


def check_event(
    event: CloudEvent,
    *,
    catalogue_item: Mapping[str, Any] | None,
    ministry: str | None,
    today: date,
    owners: Set[str] | None = None,
) -> Sequence[Violation]:
    """Every reason the event cannot be accepted (empty when it can). `owners`: the ministries
    that may report the item (default: the item's `ministries`)."""
    data = event.data
    violations: list[Violation] = []
    as_of: date | None = getattr(data, "as_of", None)
    if as_of is not None and as_of > today + FUTURE_TOLERANCE:
        violations.append(Violation("data.as_of", f"{as_of} is in the future", "as_of_in_future"))
    target_id, field, kind = _target_of(data)
    if event.partitionkey is not None and event.partitionkey != target_id:
        violations.append(
            Violation(
                "partitionkey",
                f"partitionkey {event.partitionkey!r} must be the {field} {target_id!r} "
                "(it is the Kafka record key) or be left out",
                "partitionkey_mismatch",
            )
        )
    if target_id and event.subject != target_id:
        violations.append(
            Violation(
                "subject",
                f"subject {event.subject!r} differs from {field} {target_id!r}",
                "subject_mismatch",
            )
        )
    if catalogue_item is None:
        violations.append(Violation(field, f"{target_id!r} is not in the catalogue", "unknown_id"))
        return violations
    if catalogue_item.get("state") == "retired":
        violations.append(
            Violation(field, f"{target_id!r} is retired from the catalogue", "retired_id")
        )
    if owners is None:
        owners = frozenset(catalogue_item.get("ministries") or ())
    if ministry is None or ministry not in owners:
        may = ", ".join(sorted(owners)) or "no ministry (none listed)"
        violations.append(
            Violation(
                "source",
                f"ministry {ministry!r} is not responsible for {target_id!r}; "
                f"it may be reported by: {may}",
                "wrong_ministry",
            )
        )
    if kind and catalogue_item.get("kind") != kind:
        violations.append(
            Violation(
                field,
                f"{target_id!r} is a {catalogue_item.get('kind')}, not a {kind}",
                "wrong_kind",
            )
        )
    if isinstance(data, KpiObserved):
        violations.extend(_check_value(data.value, catalogue_item))
    return violations


# Which violation names an event's problem when it has several: the most fundamental first.
PRIORITY = (
    "wrong_ministry",
    "unknown_id",
    "retired_id",
    "wrong_kind",
    "subject_mismatch",
    "partitionkey_mismatch",
    "impossible_value",
    "as_of_in_future",
)


def by_priority(violations: Sequence[Violation]) -> tuple[Violation, ...]:
    """The violations, the one that gives an event's problem its type first (stable order)."""
    rank = {code: index for index, code in enumerate(PRIORITY)}
    return tuple(sorted(violations, key=lambda v: rank.get(v.code, len(PRIORITY))))


def _target_of(data: object) -> tuple[str, str, str | None]:
    if isinstance(data, KpiObserved):
        return data.kpi_id, "data.kpi_id", "kpi"
    if isinstance(data, MilestoneReported):
        return data.milestone_id, "data.milestone_id", "milestone"
    if isinstance(data, MeasureAssessed):
        return data.measure_id, "data.measure_id", None
    return "", "subject", None


def _check_value(value: float, item: Mapping[str, Any]) -> list[Violation]:
    unit = str(item.get("unit") or "")
    if unit in PERCENT_UNITS and not 0 <= value <= 100:
        return [
            Violation("data.value", f"{value} is impossible for a percentage", "impossible_value")
        ]
    if item.get("non_negative", True) and value < 0 and unit not in {"", "pt", "ポイント"}:
        return [
            Violation(
                "data.value",
                f"{value} is negative; the unit {unit!r} cannot be",
                "impossible_value",
            )
        ]
    return []

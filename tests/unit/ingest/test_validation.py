"""The pure checks of an event against its catalogue entry, the key's ministry and the date."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest

from services.ingest.domain.validation import Violation, by_priority, check_event
from shared.events.contracts import ministry_event_adapter

TODAY = date(2024, 4, 1)
KPI: dict[str, Any] = {
    "_id": "kpi.coverage",
    "kind": "kpi",
    "unit": "%",
    "ministries": ["mic"],
    "state": "active",
}
MILESTONE: dict[str, Any] = {"_id": "ms.launch", "kind": "milestone", "ministries": ["mic"]}
MEASURE: dict[str, Any] = {"_id": "m.network", "ministries": ["mic", "digital"]}


def observed(value: float = 50.0, *, as_of: date = TODAY, **attrs: Any) -> Any:
    return ministry_event_adapter.validate_python(
        {
            "specversion": "1.0",
            "id": "e1",
            "source": "/ministries/mic",
            "type": "shinchoku.kpi.observed.v1",
            "subject": "kpi.coverage",
            "time": datetime(2024, 4, 1, tzinfo=UTC),
            "data": {"kpi_id": "kpi.coverage", "value": value, "as_of": as_of},
            **attrs,
        }
    )


def codes(violations: Any) -> list[str]:
    return [v.code for v in violations]


def test_a_valid_observation_has_no_violation() -> None:
    """A percentage in range, as of today, by the responsible ministry: acceptable."""
    assert check_event(observed(), catalogue_item=KPI, ministry="mic", today=TODAY) == []


@pytest.mark.parametrize(
    ("event", "item", "ministry", "expected"),
    [
        (observed(130.0), KPI, "mic", ["impossible_value"]),
        (observed(-0.5), KPI, "mic", ["impossible_value"]),
        (observed(as_of=date(2024, 4, 3)), KPI, "mic", ["as_of_in_future"]),
        (observed(), None, "mic", ["unknown_id"]),
        (observed(), {**KPI, "state": "retired"}, "mic", ["retired_id"]),
        (observed(), KPI, "mhlw", ["wrong_ministry"]),
        (observed(), {**KPI, "ministries": []}, "mic", ["wrong_ministry"]),
        (observed(), MILESTONE, "mic", ["wrong_kind"]),
        (observed(subject="kpi.other"), KPI, "mic", ["subject_mismatch"]),
        (observed(partitionkey="x"), KPI, "mic", ["partitionkey_mismatch"]),
    ],
)
def test_each_reason_is_reported(
    event: Any, item: dict[str, Any] | None, ministry: str, expected: list[str]
) -> None:
    """Each way of being unacceptable is reported with its own code."""
    assert (
        codes(check_event(event, catalogue_item=item, ministry=ministry, today=TODAY)) == expected
    )


def test_a_day_ahead_is_tolerated_for_time_zones() -> None:
    """Japan is UTC+9: an as_of one day after the UTC date is not in the future."""
    event = observed(as_of=date(2024, 4, 2))
    assert check_event(event, catalogue_item=KPI, ministry="mic", today=TODAY) == []


def test_counts_may_be_negative_only_for_point_units() -> None:
    """A negative count is impossible; a negative change in points is not."""
    persons = {**KPI, "unit": "persons"}
    points = {**KPI, "unit": "pt"}
    assert codes(check_event(observed(-3.0), catalogue_item=persons, ministry="mic", today=TODAY))
    assert not check_event(observed(-3.0), catalogue_item=points, ministry="mic", today=TODAY)


def test_the_ministry_check_covers_measures() -> None:
    """A measure assessment is checked against the measure's ministries."""
    event = ministry_event_adapter.validate_python(
        {
            "specversion": "1.0",
            "id": "e2",
            "source": "/ministries/mhlw",
            "type": "shinchoku.measure.assessed.v1",
            "subject": "m.network",
            "time": "2024-04-01T00:00:00Z",
            "data": {"measure_id": "m.network", "rating": "at_risk", "as_of": "2024-03-31"},
        }
    )
    assert codes(check_event(event, catalogue_item=MEASURE, ministry="mhlw", today=TODAY)) == [
        "wrong_ministry"
    ]
    assert check_event(event, catalogue_item=MEASURE, ministry="digital", today=TODAY) == []


def test_priority_puts_the_most_fundamental_violation_first() -> None:
    """The ministry problem names the event's problem before a value problem."""
    ordered = by_priority(
        [
            Violation("data.as_of", "x", "as_of_in_future"),
            Violation("data.value", "x", "impossible_value"),
            Violation("source", "x", "wrong_ministry"),
        ]
    )
    assert codes(ordered) == ["wrong_ministry", "impossible_value", "as_of_in_future"]


def test_any_listed_owner_may_report_and_a_refusal_names_them() -> None:
    """The owners lookup (a set) decides; the refusal says who may report the item."""
    shared = {**KPI, "ministries": ["mic", "digital"]}
    assert check_event(observed(), catalogue_item=shared, ministry="mic", today=TODAY) == []
    (refused,) = check_event(
        observed(), catalogue_item=shared, ministry="mhlw", today=TODAY, owners=None
    )
    assert refused.code == "wrong_ministry"
    assert refused.reason.endswith("it may be reported by: digital, mic")
    # An owners set given by the caller (run-time ownership) wins over the item's list.
    assert (
        check_event(
            observed(), catalogue_item=KPI, ministry="mhlw", today=TODAY, owners={"mic", "mhlw"}
        )
        == []
    )

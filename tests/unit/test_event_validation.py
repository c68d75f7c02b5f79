"""The one validation every trust boundary runs (shared.events.validation): an event against its
catalogue item's facts, the item's owners and the receive time."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.events.contracts import ministry_event_adapter
from shared.events.validation import (
    PLAN_ERA_FLOOR,
    ItemFacts,
    Rules,
    UnitKind,
    Violation,
    by_priority,
    check_event,
    facts_from_catalogue,
    owners_from_catalogue,
    unit_kind,
    value_problem,
)

NOW = datetime(2024, 4, 1, 3, 0, tzinfo=UTC)
TODAY = NOW.date()
KPI = ItemFacts(id="kpi.coverage", kind="kpi", unit="%")
MILESTONE = ItemFacts(id="ms.launch", kind="milestone")
MEASURE = ItemFacts(id="m.network", kind="measure")
MIC = frozenset({"mic"})


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


def check(event: Any, item: ItemFacts | None = KPI, owners: frozenset[str] = MIC) -> list[str]:
    return codes(check_event(event, item=item, owners=owners, now=NOW))


def test_a_valid_observation_has_no_violation() -> None:
    """A percentage in range, as of today, by the responsible ministry: acceptable."""
    assert check(observed()) == []


@pytest.mark.parametrize(
    ("event", "item", "owners", "expected"),
    [
        (observed(130.0), KPI, MIC, ["impossible_value"]),
        (observed(-0.5), KPI, MIC, ["impossible_value"]),
        (observed(as_of=date(2024, 4, 3)), KPI, MIC, ["as_of_in_future"]),
        (observed(as_of=date(2099, 1, 1)), KPI, MIC, ["as_of_in_future"]),
        (observed(as_of=date(1, 1, 1)), KPI, MIC, ["as_of_too_early"]),
        (observed(time=NOW + timedelta(minutes=6)), KPI, MIC, ["time_in_future"]),
        (observed(), None, MIC, ["unknown_id"]),
        (observed(), ItemFacts(id="kpi.coverage", kind="kpi", retired=True), MIC, ["retired_id"]),
        (observed(), KPI, frozenset({"mhlw"}), ["wrong_ministry"]),
        (observed(), KPI, frozenset(), ["wrong_ministry"]),
        (observed(), MILESTONE, MIC, ["wrong_kind"]),
        (observed(subject="kpi.other"), KPI, MIC, ["subject_mismatch"]),
        (observed(partitionkey="x"), KPI, MIC, ["partitionkey_mismatch"]),
    ],
)
def test_each_reason_is_reported(
    event: Any, item: ItemFacts | None, owners: frozenset[str], expected: list[str]
) -> None:
    """Each way of being unacceptable is reported with its own code."""
    assert check(event, item, owners) == expected


def test_any_listed_owner_may_report() -> None:
    """Ownership is a set: every ministry in it may report on the item, no other."""
    owners = frozenset({"mhlw", "mic", "digital"})
    assert check(observed(), KPI, owners) == []
    assert check(observed(source="/ministries/soumu"), KPI, owners) == ["wrong_ministry"]


def test_a_refusal_names_every_ministry_that_may_report_the_item() -> None:
    """The 403 a ministry gets for another's item says who may report it."""
    (refused,) = check_event(
        observed(source="/ministries/mhlw"),
        item=KPI,
        owners=frozenset({"mic", "digital"}),
        now=NOW,
        rules=Rules(),
    )
    assert refused.code == "wrong_ministry"
    assert refused.reason.endswith("it may be reported by: digital, mic")


def test_time_and_subject_are_optional() -> None:
    """An event without `time` and `subject` (OPTIONAL in CloudEvents 1.0) is acceptable."""
    event = ministry_event_adapter.validate_python(
        {
            "specversion": "1.0",
            "id": "e1",
            "source": "/ministries/mic",
            "type": "shinchoku.kpi.observed.v1",
            "data": {"kpi_id": "kpi.coverage", "value": 1, "as_of": "2024-03-31"},
        }
    )
    assert event.time is None
    assert event.subject is None
    assert check(event) == []


def test_time_up_to_the_tolerance_ahead_is_accepted_and_the_tolerance_is_a_setting() -> None:
    """A clock 5 minutes ahead is tolerated by default; the tolerance is a parameter."""
    event = observed(time=NOW + timedelta(minutes=5))
    assert check(event) == []
    strict = Rules(time_ahead=timedelta(seconds=10))
    assert codes(check_event(event, item=KPI, owners=MIC, now=NOW, rules=strict)) == [
        "time_in_future"
    ]


def test_a_day_ahead_is_tolerated_for_time_zones() -> None:
    """Japan is UTC+9: an as_of one day after the UTC date is not in the future."""
    assert check(observed(as_of=date(2024, 4, 2))) == []


def test_counts_are_non_negative_whole_numbers_and_points_may_be_negative() -> None:
    """A negative or fractional count is impossible; a negative change in points is not."""
    persons = ItemFacts(id="kpi.coverage", kind="kpi", unit="companies")
    points = ItemFacts(id="kpi.coverage", kind="kpi", unit="pt")
    assert check(observed(-50.0), persons) == ["impossible_value"]
    assert check(observed(2.5), persons) == ["impossible_value"]
    assert check(observed(250_000.0), persons) == []
    assert check(observed(-3.0), points) == []


def test_money_is_non_negative_and_any_value_is_bounded() -> None:
    """Money cannot be negative; nothing may reach the forecast beyond the sane maximum."""
    money = ItemFacts(id="kpi.coverage", kind="kpi", unit="JPY_100m")
    points = ItemFacts(id="kpi.coverage", kind="kpi", unit="pt")
    assert check(observed(-1.0), money) == ["impossible_value"]
    assert check(observed(12.5), money) == []
    assert check(observed(1e308), points) == ["impossible_value"]
    assert check(observed(-1e300), points) == ["impossible_value"]


@pytest.mark.parametrize(
    ("unit", "kind"),
    [
        ("%", UnitKind.PERCENT),
        ("persons", UnitKind.COUNT),
        ("base_stations", UnitKind.COUNT),
        ("regions", UnitKind.COUNT),
        ("JPY_100m", UnitKind.MONEY),
        ("pt", UnitKind.SIGNED),
        ("hours", UnitKind.QUANTITY),
    ],
)
def test_units_are_classified(unit: str, kind: UnitKind) -> None:
    """The catalogue's units map to the bounds that hold for them."""
    assert unit_kind(unit) is kind


@given(
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(["%", "persons", "JPY_100m", "pt", "hours"]),
)
def test_an_accepted_value_is_finite_and_within_its_units_bounds(value: float, unit: str) -> None:
    """Whatever the value, an accepted one is finite, bounded, and in its unit's range."""
    if value_problem(value, unit) is not None:
        return
    assert math.isfinite(value)
    assert abs(value) <= 1e15
    kind = unit_kind(unit)
    if kind is UnitKind.PERCENT:
        assert 0 <= value <= 100
    if kind is UnitKind.COUNT:
        assert value >= 0
        assert value.is_integer()
    if kind in {UnitKind.MONEY, UnitKind.QUANTITY}:
        assert value >= 0


@given(st.dates(min_value=date(1, 1, 1), max_value=date(2024, 4, 2)))
def test_as_of_is_accepted_exactly_from_the_floor(as_of: date) -> None:
    """An as_of on or after the item's floor (and not in the future) passes the date rules."""
    found = check(observed(as_of=as_of))
    assert ("as_of_too_early" in found) == (as_of < KPI.as_of_floor)


def test_facts_from_a_catalogue_document() -> None:
    """The floor is ten years before the baseline era (never later than the plan era floor)."""
    document = {
        "_id": "kpi.x",
        "kind": "kpi",
        "unit": "persons",
        "state": "active",
        "baseline": {"value": 1.0, "as_of": "2005-03-31"},
        "targets": [{"deadline": "2025-03-31"}],
        "ministries": ["mic", "digital"],
    }
    facts = facts_from_catalogue(document)
    assert facts == ItemFacts(id="kpi.x", kind="kpi", unit="persons", as_of_floor=date(1995, 1, 1))
    assert owners_from_catalogue(document) == {"mic", "digital"}
    undated = facts_from_catalogue({**document, "baseline": None})
    assert undated.as_of_floor == PLAN_ERA_FLOOR
    milestone = facts_from_catalogue({"_id": "ms.x", "kind": "milestone", "state": "retired"})
    assert milestone.kind == "milestone"
    assert milestone.retired
    assert facts_from_catalogue({"_id": "m.x"}, "measure").kind == "measure"
    assert owners_from_catalogue(None) == frozenset()


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
    assert check(event, MEASURE, frozenset({"mic", "digital"})) == ["wrong_ministry"]
    assert check(event, MEASURE, frozenset({"mhlw"})) == []
    assert check(event, KPI, frozenset({"mhlw"})) == ["wrong_kind"]


def test_priority_puts_the_most_fundamental_violation_first() -> None:
    """The ministry problem names the event's problem before a value problem."""
    ordered = by_priority(
        [
            Violation("time", "x", "time_in_future"),
            Violation("data.as_of", "x", "as_of_in_future"),
            Violation("data.value", "x", "impossible_value"),
            Violation("source", "x", "wrong_ministry"),
        ]
    )
    assert codes(ordered) == [
        "wrong_ministry",
        "impossible_value",
        "as_of_in_future",
        "time_in_future",
    ]


def test_time_is_judged_against_the_real_receive_time_not_a_simulated_clock() -> None:
    """A service on a simulated clock (days behind) still accepts a sender's real `time`."""
    simulated = NOW - timedelta(days=200)
    event = observed(as_of=simulated.date(), time=NOW)
    assert codes(check_event(event, item=KPI, owners=MIC, now=simulated)) == ["time_in_future"]
    assert check_event(event, item=KPI, owners=MIC, now=simulated, received_at=NOW) == []

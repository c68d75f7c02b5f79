"""Table tests for the numeric KPI rules K1-K9: each fires, and a near miss does not."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from typing import Any

import pytest

from services.kpi.domain import rules
from services.kpi.domain.model import (
    Accumulation,
    Direction,
    KpiDefinition,
    KpiThresholds,
    Observation,
    RelativeTarget,
    Status,
    Target,
)
from services.kpi.domain.rules import KPI_RULES, MILESTONE_RULES, Rule, evaluate_kpi
from tests.unit.kpi.factories import FINAL, STAGE_1, days, kpi, obs, state_of

TODAY = STAGE_1 + days(15)
ALL_RULES: list[Rule[Any]] = [*KPI_RULES, *MILESTONE_RULES]


@dataclass(frozen=True)
class Case:
    name: str
    defn: KpiDefinition
    observations: tuple[Observation, ...]
    today: date
    status: Status
    rule_id: str


def case(
    name: str,
    values: list[tuple[float, date]],
    status: Status,
    rule_id: str,
    *,
    today: date = TODAY,
    defn: KpiDefinition | None = None,
) -> Case:
    return Case(name, defn or kpi(), tuple(obs(v, d) for v, d in values), today, status, rule_id)


# "30% below FY2019" by FY2022, "50% below" by FY2025; the baseline (FY2019) is 100.
DECREASE = kpi(
    direction=Direction.DECREASE,
    baseline=(100.0, date(2020, 3, 31)),
    targets=(
        Target(
            relative=RelativeTarget(base_fiscal_year=2019, change_ratio=-0.30), deadline=STAGE_1
        ),
        Target(relative=RelativeTarget(base_fiscal_year=2019, change_ratio=-0.50), deadline=FINAL),
    ),
)
PENDING_BASE = kpi(
    baseline=None,
    targets=(
        Target(relative=RelativeTarget(base_fiscal_year=2022, change_ratio=0.5), deadline=FINAL),
    ),
)

CASES = [
    # K1 target_pending
    case("K1 no target set", [(10, STAGE_1)], Status.TARGET_PENDING, "K1", defn=kpi(targets=())),
    case("K1 no target, no data", [], Status.TARGET_PENDING, "K1", defn=kpi(targets=())),
    case(
        "K1 relative base year unreported",
        [(10, date(2022, 3, 31))],
        Status.TARGET_PENDING,
        "K1",
        defn=PENDING_BASE,
    ),
    case(
        "K1 near miss: base year reported",
        [(10, date(2022, 6, 30)), (12, date(2023, 3, 31))],
        Status.ON_TRACK,
        "K9",
        defn=PENDING_BASE,
    ),
    # K2 no_data
    case("K2 no observation", [], Status.NO_DATA, "K2"),
    case("K2 only a future-dated observation", [(60, TODAY + days(1))], Status.NO_DATA, "K2"),
    case("K2 near miss: observed today", [(60, TODAY)], Status.ON_TRACK, "K9"),
    # K3 achieved
    case("K3 final target met early", [(100, STAGE_1)], Status.ACHIEVED, "K3"),
    case("K3 near miss: just below final", [(99.9, STAGE_1)], Status.ON_TRACK, "K9"),
    case("K3 decrease: 50% below FY2019", [(50, STAGE_1)], Status.ACHIEVED, "K3", defn=DECREASE),
    # K4 overdue
    case("K4 final deadline passed", [(90, FINAL)], Status.OVERDUE, "K4", today=FINAL + days(31)),
    case("K4 near miss: on the deadline", [(90, FINAL)], Status.ON_TRACK, "K9", today=FINAL),
    # K5 stale
    case(
        "K5 older than cadence + grace",
        [(50, STAGE_1)],
        Status.STALE,
        "K5",
        today=STAGE_1 + days(123),
    ),
    case(
        "K5 near miss: exactly cadence + grace",
        [(50, STAGE_1)],
        Status.ON_TRACK,
        "K9",
        today=STAGE_1 + days(122),
    ),
    # K6 off_track / K7 at_risk: gap ratio = (50 - v) / 50 at the FY2022 target
    case("K6 26% behind", [(37, STAGE_1)], Status.OFF_TRACK, "K6"),
    case("K6 near miss: 24% behind", [(38, STAGE_1)], Status.AT_RISK, "K7"),
    case("K7 12% behind", [(44, STAGE_1)], Status.AT_RISK, "K7"),
    case("K7 near miss: 8% behind", [(46, STAGE_1)], Status.ON_TRACK, "K9"),
    case("K6 decrease: 33% behind", [(80, STAGE_1)], Status.OFF_TRACK, "K6", defn=DECREASE),
    case("K7 decrease: 17% behind", [(75, STAGE_1)], Status.AT_RISK, "K7", defn=DECREASE),
    case("K9 decrease: 7% behind", [(72, STAGE_1)], Status.ON_TRACK, "K9", defn=DECREASE),
    case("K3 near miss, decrease: 50.1", [(50.1, STAGE_1)], Status.ON_TRACK, "K9", defn=DECREASE),
    # K8 forecast: on plan today, but the trend misses the FY2025 target of 100
    case("K8 flat trend", [(48, date(2022, 3, 31)), (50, STAGE_1)], Status.AT_RISK, "K8"),
    case(
        "K8 near miss: steep trend", [(30, date(2022, 3, 31)), (50, STAGE_1)], Status.ON_TRACK, "K9"
    ),
]


@pytest.mark.parametrize("c", CASES, ids=[c.name for c in CASES])
def test_kpi_rule_table(c: Case) -> None:
    """Each case yields its status, decided by the named rule."""
    evaluation = evaluate_kpi(c.defn, state_of(c.defn, c.observations), c.today)
    assert (evaluation.status, evaluation.explanation.rule_id) == (c.status, c.rule_id)


def test_every_kpi_rule_has_a_firing_case() -> None:
    """The table covers every KPI rule."""
    assert {c.rule_id for c in CASES} == {r.id for r in KPI_RULES}


def test_module_docstring_lists_the_rules_in_code_order() -> None:
    """The rules docstring names every rule, in evaluation order, with the status it yields."""
    doc = rules.__doc__ or ""
    listed = re.findall(r"^\s+([KM]\d+) (\w+)", doc, flags=re.MULTILINE)
    in_code = [(r.id, r.status.value) for r in ALL_RULES]
    assert listed == in_code


def test_every_rule_has_a_docstring() -> None:
    """Each rule function documents its condition."""
    assert all(r.description for r in ALL_RULES)


def test_overdue_reports_days_late_and_evidence() -> None:
    """An overdue KPI says how many days late and which observation showed it."""
    o = obs(90, FINAL, event_id="e-final")
    evaluation = evaluate_kpi(kpi(), state_of(kpi(), [o]), FINAL + days(31))
    assert evaluation.days_late == 31
    assert evaluation.explanation.inputs["days_late"] == 31
    assert evaluation.explanation.evidence == ("e-final",)


def test_gap_explanation_carries_planned_and_actual() -> None:
    """An off-track explanation states planned vs actual and the gap ratio."""
    evaluation = evaluate_kpi(kpi(), state_of(kpi(), [obs(37, STAGE_1)]), TODAY)
    inputs = evaluation.explanation.inputs
    assert (inputs["latest_value"], inputs["planned_value"]) == (37.0, 50.0)
    assert inputs["gap_ratio"] == pytest.approx(0.26)
    assert "behind the plan 50" in evaluation.explanation.message


def test_forecast_explanation_names_the_window() -> None:
    """A forecast-driven at_risk cites every observation of the trend as evidence."""
    observations = [obs(48, date(2022, 3, 31), "a"), obs(50, STAGE_1, "b")]
    evaluation = evaluate_kpi(kpi(), state_of(kpi(), observations), TODAY)
    assert set(evaluation.explanation.evidence) == {"a", "b"}
    assert evaluation.forecast_value == pytest.approx(50 + 2 / 365 * 1096)
    assert evaluation.next_deadline == FINAL


def test_evaluation_reports_planned_forecast_and_reach_date() -> None:
    """An on-track evaluation exposes latest, planned, forecast and projected reach date."""
    observations = [obs(30, date(2022, 3, 31)), obs(50, STAGE_1)]
    evaluation = evaluate_kpi(kpi(), state_of(kpi(), observations), TODAY)
    assert evaluation.latest_value == 50
    assert evaluation.planned_value == 50
    assert evaluation.next_target_value == 100
    # 50 more at 20 per 365 days: 912.5 days after FY2022's end.
    assert evaluation.projected_reach_date == STAGE_1 + days(913)


def test_per_period_compares_with_the_fiscal_year_end() -> None:
    """A per-period value dated mid-year is held to the whole year's plan, a level is not."""
    mid_year = [obs(40, date(2022, 9, 30))]
    per_period = kpi(accumulation=Accumulation.PER_PERIOD)
    level = kpi(accumulation=Accumulation.LEVEL)
    on = date(2022, 10, 15)
    pp = evaluate_kpi(per_period, state_of(per_period, mid_year), on)
    lv = evaluate_kpi(level, state_of(level, mid_year), on)
    assert (pp.status, pp.planned_value) == (Status.AT_RISK, 50.0)
    assert lv.status is Status.ON_TRACK
    assert lv.planned_value == pytest.approx(50 * 913 / 1095)


def test_cumulative_forecast_does_not_regress() -> None:
    """A falling running total is forecast flat, a falling level is forecast to fall."""
    falling = [obs(45, date(2022, 3, 31)), obs(40, date(2022, 9, 30))]
    cumulative = kpi(accumulation=Accumulation.CUMULATIVE)
    level = kpi(accumulation=Accumulation.LEVEL)
    on = date(2022, 10, 1)
    assert evaluate_kpi(cumulative, state_of(cumulative, falling), on).forecast_value == 40
    level_forecast = evaluate_kpi(level, state_of(level, falling), on).forecast_value
    assert level_forecast is not None
    assert level_forecast < 40


def test_no_baseline_plan_starts_at_first_observation() -> None:
    """Without a baseline the plan runs from the first observation, which is evidence."""
    defn = kpi(baseline=None, targets=(Target(value=100, deadline=FINAL),))
    first, latest = obs(20, date(2022, 3, 31), "first"), obs(30, date(2023, 3, 31), "latest")
    evaluation = evaluate_kpi(defn, state_of(defn, [first, latest]), TODAY)
    # 20 -> 100 over 1461 days; 365 days in: 39.98; 30 is 12.5% of the 80 behind.
    assert evaluation.planned_value == pytest.approx(20 + 80 * 365 / 1461)
    assert evaluation.status is Status.AT_RISK
    assert evaluation.explanation.evidence == ("first", "latest")


def test_relative_target_against_observed_base_year() -> None:
    """ "30% below FY2021" resolves against the last FY2021 observation and cites it."""
    defn = kpi(
        direction=Direction.DECREASE,
        baseline=None,
        targets=(
            Target(
                relative=RelativeTarget(base_fiscal_year=2021, change_ratio=-0.30), deadline=FINAL
            ),
        ),
    )
    observations = [
        obs(90, date(2021, 9, 30), "h1"),
        obs(80, date(2022, 3, 31), "fy21"),
        obs(56, STAGE_1, "now"),
    ]
    evaluation = evaluate_kpi(defn, state_of(defn, observations), TODAY)
    assert evaluation.next_target_value == pytest.approx(56.0)
    assert evaluation.status is Status.ACHIEVED
    assert "fy21" in evaluation.explanation.evidence


def test_thresholds_are_per_kpi() -> None:
    """A KPI with looser thresholds tolerates a gap the defaults would not."""
    loose = kpi(thresholds=KpiThresholds(at_risk_tolerance=0.2, off_track_tolerance=0.5))
    state = state_of(loose, [obs(37, STAGE_1)])
    assert evaluate_kpi(loose, state, TODAY).status is Status.AT_RISK
    assert evaluate_kpi(kpi(), state, TODAY).status is Status.OFF_TRACK


def test_about_comparator_with_tolerance() -> None:
    """An "about" target is met within its tolerance on either side."""
    defn = kpi(targets=(Target(value=100, deadline=FINAL, comparator="about", tolerance=2),))
    assert (
        evaluate_kpi(defn, state_of(defn, [obs(101.5, STAGE_1)]), TODAY).status is Status.ACHIEVED
    )
    assert evaluate_kpi(defn, state_of(defn, [obs(98.5, STAGE_1)]), TODAY).status is Status.ACHIEVED
    assert (
        evaluate_kpi(defn, state_of(defn, [obs(103, STAGE_1)]), TODAY).status is not Status.ACHIEVED
    )


def test_evaluate_is_pure() -> None:
    """Evaluating twice with the same inputs gives equal results."""
    state = state_of(kpi(), [obs(30, date(2022, 3, 31)), obs(44, STAGE_1)])
    assert evaluate_kpi(kpi(), state, TODAY) == evaluate_kpi(kpi(), state, TODAY)

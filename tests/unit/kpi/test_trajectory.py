"""The planned trajectory, relative targets, fiscal years and forecast maths."""

from __future__ import annotations

from datetime import date

import pytest
from pydantic import ValidationError

from services.kpi.domain.fiscal import fiscal_year_end, fiscal_year_of, fiscal_year_start
from services.kpi.domain.forecast import (
    MAX_PROJECTION_DAYS,
    LeastSquares,
    fit_slope,
    forecast,
    projected_reach_date,
)
from services.kpi.domain.model import (
    Accumulation,
    Comparator,
    Direction,
    RelativeTarget,
    Target,
)
from services.kpi.domain.trajectory import (
    ResolvedTarget,
    Trajectory,
    UnresolvedBase,
    build_trajectory,
    comparison_date,
    resolve_targets,
    shortfall,
)
from tests.unit.kpi.factories import BASELINE_DATE, FINAL, STAGE_1, days, kpi, obs


def _trajectory() -> Trajectory:
    defn = kpi()
    resolved = resolve_targets(defn, {})
    assert not isinstance(resolved, UnresolvedBase)
    trajectory = build_trajectory(defn, resolved[0], None)
    assert trajectory is not None
    return trajectory


def test_fiscal_years_start_in_april() -> None:
    """January-March belong to the previous fiscal year; FY N ends 31 March N+1."""
    assert fiscal_year_of(date(2024, 3, 31)) == 2023
    assert fiscal_year_of(date(2024, 4, 1)) == 2024
    assert (fiscal_year_start(2024), fiscal_year_end(2024)) == (date(2024, 4, 1), date(2025, 3, 31))


@pytest.mark.parametrize(
    ("day", "planned"),
    [
        (date(2019, 1, 1), 0.0),  # before the baseline: the baseline
        (BASELINE_DATE, 0.0),
        (STAGE_1, 50.0),  # exactly the staged target
        (FINAL, 100.0),
        (date(2030, 1, 1), 100.0),  # after the last deadline: the last target
        (BASELINE_DATE + days(365), 50 * 365 / 1095),
        (STAGE_1 + days(548), 50 + 50 * 548 / 1096),
    ],
)
def test_planned_value_is_piecewise_linear(day: date, planned: float) -> None:
    """The plan interpolates linearly between baseline and staged targets, flat outside."""
    assert _trajectory().planned_at(day) == pytest.approx(planned)


def test_target_for_picks_the_governing_target() -> None:
    """The governing target is the first not yet due, or the final one once all are due."""
    t = _trajectory()
    assert t.target_for(STAGE_1).value == 50
    assert t.target_for(STAGE_1 + days(1)).value == 100
    assert t.target_for(FINAL + days(1)).value == 100


def test_span_falls_back_for_maintain_targets() -> None:
    """A target equal to the start uses |target| (or 1) as the yardstick."""
    t = _trajectory()
    assert t.span_to(ResolvedTarget(50, STAGE_1, Comparator.AT_LEAST, 0)) == 50
    flat = build_trajectory(
        kpi(baseline=(40, BASELINE_DATE)),
        (ResolvedTarget(40, FINAL, Comparator.AT_LEAST, 0),),
        None,
    )
    assert flat is not None
    assert flat.span_to(flat.final) == 40
    zero = build_trajectory(kpi(), (ResolvedTarget(0, FINAL, Comparator.AT_LEAST, 0),), None)
    assert zero is not None
    assert zero.span_to(zero.final) == 1.0


def test_no_baseline_starts_at_first_observation() -> None:
    """Without a baseline the plan starts at the first observation; without data, no plan."""
    defn = kpi(baseline=None)
    resolved = resolve_targets(defn, {})
    assert not isinstance(resolved, UnresolvedBase)
    assert build_trajectory(defn, resolved[0], None) is None
    t = build_trajectory(defn, resolved[0], obs(10, date(2021, 3, 31)))
    assert t is not None
    assert t.planned_at(date(2021, 3, 31)) == 10
    assert t.planned_at(STAGE_1) == 50


def test_data_starting_after_every_deadline_plans_the_final_target() -> None:
    """If the first observation is after all deadlines, the plan is the final target."""
    defn = kpi(baseline=None)
    resolved = resolve_targets(defn, {})
    assert not isinstance(resolved, UnresolvedBase)
    t = build_trajectory(defn, resolved[0], obs(10, FINAL + days(1)))
    assert t is not None
    assert t.planned_at(FINAL + days(100)) == 100


def test_relative_target_resolution_order() -> None:
    """A relative base is the explicit value, else the baseline in that FY, else an observation."""
    explicit = kpi(
        targets=(
            Target(relative=RelativeTarget(base_value=200, change_ratio=-0.3), deadline=FINAL),
        )
    )
    by_baseline = kpi(
        targets=(
            Target(
                relative=RelativeTarget(base_fiscal_year=2019, change_ratio=0.5), deadline=FINAL
            ),
        ),
        baseline=(80, BASELINE_DATE),
    )
    by_obs = kpi(
        targets=(
            Target(
                relative=RelativeTarget(base_fiscal_year=2021, change_ratio=0.5), deadline=FINAL
            ),
        )
    )
    anchor = obs(60, date(2021, 12, 31), "anchor")
    resolved_explicit = resolve_targets(explicit, {})
    assert not isinstance(resolved_explicit, UnresolvedBase)
    assert resolved_explicit[0][0].value == pytest.approx(140)
    assert resolve_targets(by_baseline, {2019: anchor}) == (
        (ResolvedTarget(120.0, FINAL, Comparator.AT_LEAST, 0.0),),
        (),
    )
    assert resolve_targets(by_obs, {2021: anchor}) == (
        (ResolvedTarget(90.0, FINAL, Comparator.AT_LEAST, 0.0),),
        ("anchor",),
    )
    assert resolve_targets(by_obs, {}) == UnresolvedBase(FINAL, 2021)


def test_comparison_date_per_period() -> None:
    """Per-period values meet the plan at their fiscal year's end; others at as_of."""
    mid = date(2022, 9, 30)
    assert comparison_date(kpi(accumulation=Accumulation.PER_PERIOD), mid) == date(2023, 3, 31)
    assert comparison_date(kpi(accumulation=Accumulation.CUMULATIVE), mid) == mid


def test_shortfall_by_direction() -> None:
    """Shortfall counts only being behind, in the direction of progress."""
    assert shortfall(Direction.INCREASE, 50, 40) == 10
    assert shortfall(Direction.INCREASE, 50, 60) == 0
    assert shortfall(Direction.DECREASE, 50, 60) == 10
    assert shortfall(Direction.DECREASE, 50, 40) == 0


def test_definition_validation() -> None:
    """Definitions reject unordered deadlines, targets before the baseline, contradictions."""
    with pytest.raises(ValidationError, match="strictly increasing"):
        kpi(targets=(Target(value=1, deadline=FINAL), Target(value=2, deadline=STAGE_1)))
    with pytest.raises(ValidationError, match="after the baseline"):
        kpi(targets=(Target(value=1, deadline=BASELINE_DATE),))
    with pytest.raises(ValidationError, match="contradicts"):
        kpi(targets=(Target(value=1, deadline=FINAL, comparator=Comparator.AT_MOST),))
    with pytest.raises(ValidationError, match="exactly one"):
        Target(deadline=FINAL)
    with pytest.raises(ValidationError, match="exactly one"):
        RelativeTarget(base_value=1, base_fiscal_year=2020, change_ratio=0.1)


# --------------------------------------------------------------------------- forecast


def test_least_squares_recovers_a_line() -> None:
    """On exactly linear data the slope is the line's slope."""
    stats = LeastSquares()
    for x in range(5):
        stats = stats.add(float(x), 3.0 + 2.0 * x)
    assert stats.slope == pytest.approx(2.0)


def test_least_squares_needs_two_distinct_x() -> None:
    """With one point, or one date repeated, there is no slope."""
    assert LeastSquares().add(1.0, 1.0).slope is None
    assert LeastSquares().add(1.0, 1.0).add(1.0, 2.0).slope is None
    assert fit_slope([]) is None


def test_slope_over_noisy_window() -> None:
    """The fitted slope is the least-squares slope over the window's dates."""
    points = [obs(10, date(2023, 1, 1)), obs(14, date(2023, 1, 11)), obs(15, date(2023, 1, 21))]
    # x = -20, -10, 0; y = 10, 14, 15: slope = sum(dx*dy)/sum(dx^2) = (10*3 + 0 + 10*2)/200
    assert fit_slope(points) == pytest.approx(0.25)


def test_forecast_runs_through_latest_value() -> None:
    """The projection starts from the latest value with the window's slope."""
    target = ResolvedTarget(100, date(2023, 3, 1), Comparator.AT_LEAST, 0)
    points = [obs(10, date(2023, 1, 1)), obs(20, date(2023, 1, 11)), obs(25, date(2023, 1, 21))]
    result = forecast(
        points, direction=Direction.INCREASE, accumulation=Accumulation.LEVEL, target=target
    )
    assert result is not None
    assert result.slope_per_day == pytest.approx(0.75)
    assert result.value_at_deadline == pytest.approx(25 + 0.75 * 39)
    assert result.reach_date == date(2023, 1, 21) + days(100)
    assert result.evidence == tuple(p.event_id for p in points)


def test_forecast_decrease_kpi() -> None:
    """A falling KPI with a ceiling target is projected to reach it."""
    target = ResolvedTarget(50, date(2024, 1, 1), Comparator.AT_MOST, 0)
    points = [obs(100, date(2023, 1, 1)), obs(90, date(2023, 1, 11))]
    result = forecast(
        points, direction=Direction.DECREASE, accumulation=Accumulation.CUMULATIVE, target=target
    )
    assert result is not None
    assert result.reach_date == date(2023, 1, 11) + days(40)


def test_reach_date_none_when_moving_away_or_flat() -> None:
    """No reach date on a flat or wrong-way trend, or beyond the projection horizon."""
    target = ResolvedTarget(100, FINAL, Comparator.AT_LEAST, 0)
    latest = obs(10, STAGE_1)
    assert projected_reach_date(latest, 0.0, target) is None
    assert projected_reach_date(latest, -1.0, target) is None
    assert projected_reach_date(latest, 90 / (MAX_PROJECTION_DAYS + 1), target) is None
    assert projected_reach_date(obs(100, STAGE_1), -1.0, target) == STAGE_1


def test_reach_date_uses_tolerance_edge() -> None:
    """A target with tolerance is reached at its edge, for "about" from either side."""
    latest = obs(10, STAGE_1)
    assert projected_reach_date(
        latest, 1.0, ResolvedTarget(100, FINAL, Comparator.AT_LEAST, 10)
    ) == STAGE_1 + days(80)
    assert projected_reach_date(
        latest, 1.0, ResolvedTarget(100, FINAL, Comparator.ABOUT, 10)
    ) == STAGE_1 + days(80)
    above = obs(200, STAGE_1)
    assert projected_reach_date(
        above, -1.0, ResolvedTarget(100, FINAL, Comparator.ABOUT, 10)
    ) == STAGE_1 + days(90)

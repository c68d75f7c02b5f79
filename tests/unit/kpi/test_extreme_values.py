"""Extreme but finite values never make the evaluation raise or produce a non-finite number.

Issue 12 item 1: an accepted observation of 1e308 made the forecast overflow to inf, which the
Evaluation model refused, so the consumer's handler failed on that KPI for ever. The domain now
computes through overflow-safe arithmetic (services/kpi/domain/arithmetic.py).
"""

from __future__ import annotations

import math
import sys
from datetime import UTC, date, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from services.kpi.domain.arithmetic import FLOAT_MAX, interpolate, ratio, saturate
from services.kpi.domain.forecast import fit_slope, forecast
from services.kpi.domain.history import evaluate_kpi_as_of
from services.kpi.domain.model import (
    Accumulation,
    Baseline,
    Comparator,
    Direction,
    Evaluation,
    KpiDefinition,
    Observation,
    RelativeTarget,
    Target,
)
from services.kpi.domain.rules import evaluate_kpi
from services.kpi.domain.trajectory import ResolvedTarget, Trajectory
from tests.unit.kpi.factories import BASELINE_DATE, FINAL, STAGE_1, kpi, obs, state_of

RECEIVED = datetime(2030, 1, 1, tzinfo=UTC)
SETTINGS = settings(max_examples=300, deadline=None)
EXTREMES = (
    1e308,
    -1e308,
    sys.float_info.max,
    -sys.float_info.max,
    5e-324,
    -5e-324,
    sys.float_info.min,
    0.0,
    1.0,
    -1.0,
)
finite = st.sampled_from(EXTREMES) | st.floats(allow_nan=False, allow_infinity=False)
EPOCH = date(2020, 1, 1)


def day(offset: int) -> date:
    return EPOCH + timedelta(days=offset)


def assert_finite(evaluation: Evaluation) -> None:
    for name in (
        "latest_value",
        "planned_value",
        "next_target_value",
        "forecast_value",
        "percent_complete",
    ):
        value = getattr(evaluation, name)
        assert value is None or math.isfinite(value), (name, value)
    for name, value in evaluation.explanation.inputs.items():
        if isinstance(value, float):
            assert math.isfinite(value), (name, value)


def test_the_issues_poison_value_evaluates_to_a_finite_status() -> None:
    """The value from the issue (1e308, latest, after an ordinary one) evaluates: the KPI meets
    its final target and the forecast is a finite number, not an overflow."""
    defn = kpi()
    state = state_of(defn, [obs(40, STAGE_1 - timedelta(days=30)), obs(1e308, STAGE_1)])
    evaluation = evaluate_kpi(defn, state, STAGE_1 + timedelta(days=1))
    assert_finite(evaluation)
    assert evaluation.latest_value == 1e308
    assert evaluation.explanation.rule_id == "K3"


def test_a_huge_fall_forecasts_a_finite_value_and_is_at_risk_or_worse() -> None:
    """-1e308 after an ordinary value: the trend is a finite (saturated) fall, the KPI is behind."""
    defn = kpi()
    state = state_of(defn, [obs(40, STAGE_1 - timedelta(days=30)), obs(-1e308, STAGE_1)])
    evaluation = evaluate_kpi(defn, state, STAGE_1 + timedelta(days=1))
    assert_finite(evaluation)
    assert evaluation.status.value == "off_track"
    assert evaluation.forecast_value is not None
    assert evaluation.forecast_value == -FLOAT_MAX


def test_a_relative_target_on_a_huge_base_stays_finite() -> None:
    """A target of "+100% over FY2020" whose FY2020 value is 1e308 saturates, not overflows."""
    defn = KpiDefinition(
        id="k",
        measure_id="m",
        direction=Direction.INCREASE,
        targets=(
            Target(
                relative=RelativeTarget(base_fiscal_year=2020, change_ratio=1.0), deadline=FINAL
            ),
        ),
    )
    state = state_of(defn, [obs(1e308, date(2020, 6, 30)), obs(2e307, date(2021, 6, 30))])
    evaluation = evaluate_kpi(defn, state, date(2021, 7, 1))
    assert_finite(evaluation)
    assert evaluation.next_target_value == FLOAT_MAX


def test_dates_at_the_end_of_the_calendar_do_not_overflow() -> None:
    """Per-period values in the last fiscal year and a projection past 9999-12-31 evaluate."""
    for accumulation in Accumulation:
        defn = kpi(
            accumulation=accumulation,
            targets=(Target(value=100, deadline=date(9999, 12, 31)),),
        )
        state = state_of(defn, [obs(1, date(9999, 12, 1)), obs(1.0000001, date.max)])
        assert_finite(evaluate_kpi(defn, state, date.max))


@SETTINGS
@given(values=st.lists(finite, min_size=1, max_size=8), gaps=st.lists(st.integers(1, 400)))
def test_the_slope_is_finite_for_any_finite_values(values: list[float], gaps: list[int]) -> None:
    """The least-squares slope never overflows, whatever the finite values."""
    offsets = [0]
    for gap in gaps[: len(values) - 1]:
        offsets.append(offsets[-1] + gap)
    points = [
        obs(v, day(o), f"e{i}") for i, (v, o) in enumerate(zip(values, offsets, strict=False))
    ]
    slope = fit_slope(points)
    assert slope is None or math.isfinite(slope)


@SETTINGS
@given(
    values=st.lists(finite, min_size=2, max_size=6),
    target=finite,
    tolerance=finite.map(abs),
    comparator=st.sampled_from(Comparator),
    direction=st.sampled_from(Direction),
    accumulation=st.sampled_from(Accumulation),
    horizon=st.integers(min_value=-400, max_value=40_000),
)
def test_the_forecast_is_finite_for_any_finite_values(
    values: list[float],
    target: float,
    tolerance: float,
    comparator: Comparator,
    direction: Direction,
    accumulation: Accumulation,
    horizon: int,
) -> None:
    """The projected value is finite and the reach date, if any, a real date."""
    points = [obs(v, day(i * 7), f"e{i}") for i, v in enumerate(values)]
    deadline = max(points[-1].as_of + timedelta(days=horizon), date.min)
    resolved = ResolvedTarget(target, deadline, comparator, tolerance)
    projection = forecast(points, direction=direction, accumulation=accumulation, target=resolved)
    assert projection is not None
    assert math.isfinite(projection.value_at_deadline)
    assert math.isfinite(projection.slope_per_day)


@SETTINGS
@given(v0=finite, v1=finite, fraction=st.floats(min_value=0.0, max_value=1.0))
def test_the_plan_between_two_points_is_finite_and_exact_at_the_ends(
    v0: float, v1: float, fraction: float
) -> None:
    """Interpolation never overflows and returns the end values exactly at 0 and 1."""
    assert math.isfinite(interpolate(v0, v1, fraction))
    assert interpolate(v0, v1, 0.0) == v0
    assert interpolate(v0, v1, 1.0) == v1


def test_saturating_helpers() -> None:
    """inf saturates to the largest float, NaN to 0, and a tiny denominator gives a huge ratio."""
    assert saturate(math.inf) == FLOAT_MAX
    assert saturate(-math.inf) == -FLOAT_MAX
    assert saturate(math.nan) == 0.0
    assert ratio(1e308, 5e-324) == FLOAT_MAX
    trajectory = Trajectory(
        BASELINE_DATE, -1e308, (ResolvedTarget(1e308, FINAL, Comparator.AT_LEAST, 0.0),)
    )
    assert math.isfinite(trajectory.planned_at(STAGE_1))
    assert trajectory.span_to(trajectory.final) == FLOAT_MAX


@st.composite
def extreme_definitions(draw: st.DrawFn) -> KpiDefinition:
    direction = draw(st.sampled_from(Direction))
    baseline_offset = draw(st.integers(min_value=0, max_value=365))
    deadlines = sorted(
        draw(
            st.sets(
                st.integers(min_value=baseline_offset + 1, max_value=8 * 365),
                min_size=1,
                max_size=3,
            )
        )
    )
    targets = []
    for deadline in deadlines:
        if draw(st.booleans()):
            targets.append(
                Target(
                    value=draw(finite),
                    deadline=day(deadline),
                    tolerance=abs(draw(finite)),
                )
            )
        else:
            targets.append(
                Target(
                    relative=RelativeTarget(
                        base_fiscal_year=draw(st.integers(min_value=2019, max_value=2024)),
                        change_ratio=draw(st.floats(min_value=-0.99, max_value=1e300)),
                    ),
                    deadline=day(deadline),
                )
            )
    return KpiDefinition(
        id="k",
        measure_id="m",
        direction=direction,
        accumulation=draw(st.sampled_from(Accumulation)),
        baseline=draw(
            st.none() | st.builds(Baseline, value=finite, as_of=st.just(day(baseline_offset)))
        ),
        targets=tuple(targets),
        forecast_window=draw(st.integers(min_value=2, max_value=8)),
    )


@SETTINGS
@given(
    defn=extreme_definitions(),
    observations=st.lists(
        st.tuples(finite, st.integers(min_value=0, max_value=8 * 365)), max_size=10
    ),
    today=st.integers(min_value=0, max_value=10 * 365),
)
def test_evaluation_never_raises_and_is_finite_for_extreme_values(
    defn: KpiDefinition, observations: list[tuple[float, int]], today: int
) -> None:
    """Any finite values, in observations, baselines, targets and tolerances: evaluate_kpi and
    the as-of evaluation return a valid Evaluation whose numbers are all finite."""
    history = [
        Observation(event_id=f"e{i}", value=v, as_of=day(o), received_at=RECEIVED)
        for i, (v, o) in enumerate(observations)
    ]
    assert_finite(evaluate_kpi(defn, state_of(defn, history), day(today)))
    assert_finite(evaluate_kpi_as_of(defn, history, day(today)))

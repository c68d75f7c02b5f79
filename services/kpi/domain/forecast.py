"""Forecast of a numeric KPI from its recent observations.

The rate is the least-squares slope (value per day) over the forecast window, the most recent
observations by as_of. The projection line runs through the latest observation with that
slope: the latest value is the best estimate of where the KPI is now (for running totals it is
exact) and the window's slope is the best estimate of how fast it moves. For cumulative KPIs
the slope is clamped at zero in the direction of regress, since a running total cannot fall.
Every figure is finite whatever the (finite) values: see arithmetic.py.

The least-squares sums are rebuilt from the window on every evaluation instead of being kept
across events: the window is bounded, so the cost is constant, and float sums accumulated in
arrival order would make the state depend on that order.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta

from services.kpi.domain.arithmetic import difference, product, ratio, total
from services.kpi.domain.model import Accumulation, Comparator, Direction, Observation
from services.kpi.domain.trajectory import ResolvedTarget

# Beyond this, "projected reach date" is not a useful answer.
MAX_PROJECTION_DAYS = 100 * 366


@dataclass(frozen=True, slots=True)
class LeastSquares:
    """Sufficient statistics of a simple linear regression."""

    n: int = 0
    sum_x: float = 0.0
    sum_y: float = 0.0
    sum_xx: float = 0.0
    sum_xy: float = 0.0

    def add(self, x: float, y: float) -> LeastSquares:
        return LeastSquares(
            self.n + 1,
            self.sum_x + x,
            self.sum_y + y,
            self.sum_xx + x * x,
            self.sum_xy + x * y,
        )

    @property
    def slope(self) -> float | None:
        """None when the x values do not vary (fewer than two distinct dates)."""
        denominator = self.n * self.sum_xx - self.sum_x * self.sum_x
        if self.n < 2 or denominator <= 0:
            return None
        return (self.n * self.sum_xy - self.sum_x * self.sum_y) / denominator


@dataclass(frozen=True, slots=True)
class Forecast:
    slope_per_day: float
    deadline: date
    value_at_deadline: float
    reach_date: date | None
    evidence: tuple[str, ...]


def _slope(points: Sequence[Observation], scale: float) -> float | None:
    # Days relative to the latest keep the sums small and well conditioned.
    origin = points[-1].as_of.toordinal()
    stats = LeastSquares()
    for obs in points:
        stats = stats.add(float(obs.as_of.toordinal() - origin), obs.value / scale)
    return stats.slope


def fit_slope(points: Sequence[Observation]) -> float | None:
    """Value per day; never infinite or NaN, whatever the (finite) values."""
    if not points:
        return None
    slope = _slope(points, 1.0)
    if slope is None or math.isfinite(slope):
        return slope
    # The sums overflowed (values near the float limit): fit the values divided by the
    # largest of them, then scale the slope back, saturating.
    scale = max(abs(obs.value) for obs in points)
    scaled = _slope(points, scale)
    return None if scaled is None else product(scaled, scale)


def _reach_edge(target: ResolvedTarget, current: float) -> float:
    """The value at which `target` starts to be met, approaching from `current`."""
    if target.comparator is Comparator.AT_LEAST:
        return difference(target.value, target.tolerance)
    if target.comparator is Comparator.AT_MOST:
        return total(target.value, target.tolerance)
    if current < target.value:
        return difference(target.value, target.tolerance)
    return total(target.value, target.tolerance)


def projected_reach_date(latest: Observation, slope: float, target: ResolvedTarget) -> date | None:
    """When the projection line first meets `target`; None if it never does (flat or moving
    away) or only beyond MAX_PROJECTION_DAYS."""
    if target.is_met_by(latest.value):
        return latest.as_of
    if slope == 0:
        return None
    days = ratio(difference(_reach_edge(target, latest.value), latest.value), abs(slope))
    days = days if slope > 0 else -days
    if days <= 0 or days > MAX_PROJECTION_DAYS:
        return None
    if latest.as_of.toordinal() + math.ceil(days) > date.max.toordinal():
        return None  # beyond the calendar: as good as never
    return latest.as_of + timedelta(days=math.ceil(days))


def forecast(
    points: Sequence[Observation],
    *,
    direction: Direction,
    accumulation: Accumulation,
    target: ResolvedTarget,
) -> Forecast | None:
    """Projection of the window `points` (sorted by as_of, one per date) to `target`'s
    deadline; None with fewer than two dates."""
    slope = fit_slope(points)
    if slope is None:
        return None
    if accumulation is Accumulation.CUMULATIVE:
        slope = max(slope, 0.0) if direction is Direction.INCREASE else min(slope, 0.0)
    latest = points[-1]
    days = target.deadline.toordinal() - latest.as_of.toordinal()
    return Forecast(
        slope_per_day=slope,
        deadline=target.deadline,
        value_at_deadline=total(latest.value, product(slope, days)),
        reach_date=projected_reach_date(latest, slope, target),
        evidence=tuple(obs.event_id for obs in points),
    )

"""The planned trajectory of a numeric KPI.

The plan is piecewise linear in calendar days from the start point through each staged
target at its deadline. The start point is the baseline (value, date), or the first
observation when the catalogue gives no baseline. Before the start the plan is the start
value; after the last deadline it is the last target value.

Relative targets resolve against a base value: an explicit base_value, else the baseline if
its date falls in the base fiscal year, else the latest observation within that fiscal year.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date

from services.kpi.domain.arithmetic import difference, interpolate, product
from services.kpi.domain.fiscal import fiscal_year_end, fiscal_year_of
from services.kpi.domain.model import (
    Accumulation,
    Comparator,
    Direction,
    KpiDefinition,
    Observation,
    RelativeTarget,
)


@dataclass(frozen=True, slots=True)
class ResolvedTarget:
    value: float
    deadline: date
    comparator: Comparator
    tolerance: float

    def is_met_by(self, value: float) -> bool:
        if self.comparator is Comparator.AT_LEAST:
            return value >= self.value - self.tolerance
        if self.comparator is Comparator.AT_MOST:
            return value <= self.value + self.tolerance
        return abs(value - self.value) <= self.tolerance


@dataclass(frozen=True, slots=True)
class UnresolvedBase:
    """A relative target whose base fiscal year has no value yet."""

    deadline: date
    base_fiscal_year: int


def base_value(
    defn: KpiDefinition, relative: RelativeTarget, anchors: Mapping[int, Observation]
) -> tuple[float, str | None] | None:
    """The base a relative target refers to and the event id it came from (None for the
    catalogue), or None when it is not known yet."""
    if relative.base_value is not None:
        return relative.base_value, None
    fiscal_year = relative.base_fiscal_year
    assert fiscal_year is not None  # guaranteed by RelativeTarget's validator
    baseline = defn.baseline
    # The catalogue's baseline is the official figure, so it wins over a reported one.
    if baseline is not None and fiscal_year_of(baseline.as_of) == fiscal_year:
        return baseline.value, None
    anchor = anchors.get(fiscal_year)
    if anchor is not None:
        return anchor.value, anchor.event_id
    return None


def resolve_targets(
    defn: KpiDefinition, anchors: Mapping[int, Observation]
) -> tuple[tuple[ResolvedTarget, ...], tuple[str, ...]] | UnresolvedBase:
    """All targets with relative ones resolved, plus the event ids used as bases."""
    resolved: list[ResolvedTarget] = []
    evidence: list[str] = []
    for target in defn.targets:
        if target.relative is None:
            assert target.value is not None  # guaranteed by Target's validator
            value = target.value
        else:
            base = base_value(defn, target.relative, anchors)
            if base is None:
                assert target.relative.base_fiscal_year is not None
                return UnresolvedBase(target.deadline, target.relative.base_fiscal_year)
            value = product(base[0], 1.0 + target.relative.change_ratio)
            if base[1] is not None:
                evidence.append(base[1])
        resolved.append(
            ResolvedTarget(value, target.deadline, defn.comparator(target), target.tolerance)
        )
    return tuple(resolved), tuple(dict.fromkeys(evidence))


@dataclass(frozen=True, slots=True)
class Trajectory:
    start_date: date
    start_value: float
    targets: tuple[ResolvedTarget, ...]

    @property
    def points(self) -> tuple[tuple[date, float], ...]:
        later = tuple((t.deadline, t.value) for t in self.targets if t.deadline > self.start_date)
        if not later and self.targets:
            # Every deadline precedes the first data: the plan is already the final target.
            return ((self.start_date, self.targets[-1].value),)
        return ((self.start_date, self.start_value), *later)

    @property
    def final(self) -> ResolvedTarget:
        return self.targets[-1]

    def planned_at(self, day: date) -> float:
        points = self.points
        ordinals = [d.toordinal() for d, _ in points]
        x = day.toordinal()
        i = bisect_left(ordinals, x)
        if i < len(points) and ordinals[i] == x:
            return points[i][1]  # exact at a knot, so a target is hit exactly at its deadline
        if i == 0:
            return points[0][1]
        if i == len(points):
            return points[-1][1]
        (x0, v0), (x1, v1) = (ordinals[i - 1], points[i - 1][1]), (ordinals[i], points[i][1])
        return interpolate(v0, v1, (x - x0) / (x1 - x0))

    def target_for(self, day: date) -> ResolvedTarget:
        """The target governing `day`: the first with deadline >= day, else the final one."""
        for target in self.targets:
            if target.deadline >= day:
                return target
        return self.final

    def span_to(self, target: ResolvedTarget) -> float:
        """The planned change from the start to `target`; the yardstick for tolerances.

        Falls back to |target| then 1.0 when the target equals the start ("maintain X"), so
        a ratio is always defined.
        """
        span = abs(difference(target.value, self.start_value))
        if span > 0:
            return span
        return abs(target.value) if target.value != 0 else 1.0


def build_trajectory(
    defn: KpiDefinition, targets: tuple[ResolvedTarget, ...], first: Observation | None
) -> Trajectory | None:
    """The plan, or None when there is no target or no start point (no baseline, no data)."""
    if not targets:
        return None
    if defn.baseline is not None:
        return Trajectory(defn.baseline.as_of, defn.baseline.value, targets)
    if first is None:
        return None
    return Trajectory(first.as_of, first.value, targets)


def comparison_date(defn: KpiDefinition, as_of: date) -> date:
    """The plan date an observation is compared with: per-period values describe the whole
    fiscal year, so they meet the plan at that year's end."""
    if defn.accumulation is Accumulation.PER_PERIOD:
        fiscal_year = fiscal_year_of(as_of)
        # The last fiscal year the calendar can end (FY9999 would end in the year 10000).
        return fiscal_year_end(fiscal_year) if fiscal_year < date.max.year else date.max
    return as_of


def shortfall(direction: Direction, planned: float, actual: float) -> float:
    """How far `actual` is behind `planned` in the direction of progress (0 if ahead)."""
    if direction is Direction.INCREASE:
        return max(difference(planned, actual), 0.0)
    return max(difference(actual, planned), 0.0)

"""Builders for KPI-engine tests: short names, sensible defaults."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta

from services.kpi.domain.model import (
    UNKNOWN_ARRIVAL,
    Accumulation,
    Baseline,
    Direction,
    KpiDefinition,
    KpiThresholds,
    MilestoneDefinition,
    MilestoneKind,
    MilestoneReport,
    MilestoneThresholds,
    Observation,
    ReportedState,
    Target,
)
from services.kpi.domain.state import KpiState, MilestoneState, apply_observation, apply_report

RECEIVED = datetime(2020, 1, 1, tzinfo=UTC)

# The reference KPI: 0 at the end of FY2019, 50 by the end of FY2022, 100 by the end of FY2025.
BASELINE_DATE = date(2020, 3, 31)
STAGE_1 = date(2023, 3, 31)
FINAL = date(2026, 3, 31)


def obs(
    value: float,
    as_of: date,
    event_id: str | None = None,
    received_at: datetime | None = None,
    arrival: int = UNKNOWN_ARRIVAL,
) -> Observation:
    return Observation(
        event_id=event_id or f"obs-{as_of.isoformat()}-{value:g}",
        value=value,
        as_of=as_of,
        received_at=received_at or RECEIVED,
        arrival=arrival,
    )


def kpi(
    *,
    direction: Direction = Direction.INCREASE,
    accumulation: Accumulation = Accumulation.LEVEL,
    baseline: tuple[float, date] | None = (0.0, BASELINE_DATE),
    targets: tuple[Target, ...] | None = None,
    thresholds: KpiThresholds | None = None,
    kpi_id: str = "kpi-1",
) -> KpiDefinition:
    if targets is None:
        targets = (Target(value=50, deadline=STAGE_1), Target(value=100, deadline=FINAL))
    return KpiDefinition(
        id=kpi_id,
        measure_id="measure-1",
        ministries=("digital",),
        direction=direction,
        accumulation=accumulation,
        baseline=None if baseline is None else Baseline(value=baseline[0], as_of=baseline[1]),
        targets=targets,
        thresholds=thresholds or KpiThresholds(),
    )


def state_of(defn: KpiDefinition, observations: Iterable[Observation]) -> KpiState:
    state = KpiState.for_definition(defn)
    for o in observations:
        state = apply_observation(state, o)
    return state


# The reference milestone: work from 2023-04-01, due 2024-03-31.
M_START = date(2023, 4, 1)
M_DEADLINE = date(2024, 3, 31)


def milestone(
    kind: MilestoneKind = MilestoneKind.DELIVER,
    *,
    planned_start: date | None = M_START,
    thresholds: MilestoneThresholds | None = None,
) -> MilestoneDefinition:
    return MilestoneDefinition(
        id="ms-1",
        measure_id="measure-1",
        ministries=("digital",),
        kind=kind,
        deadline=M_DEADLINE,
        planned_start=planned_start,
        thresholds=thresholds or MilestoneThresholds(),
    )


def report(
    state: ReportedState,
    as_of: date,
    percent: float | None = None,
    expected: date | None = None,
    event_id: str | None = None,
    received_at: datetime | None = None,
    arrival: int = UNKNOWN_ARRIVAL,
) -> MilestoneReport:
    return MilestoneReport(
        event_id=event_id or f"rep-{as_of.isoformat()}-{state.value}",
        state=state,
        percent_complete=percent,
        expected_completion=expected,
        as_of=as_of,
        received_at=received_at or RECEIVED,
        arrival=arrival,
    )


def mstate_of(defn: MilestoneDefinition, reports: Iterable[MilestoneReport]) -> MilestoneState:
    state = MilestoneState.for_definition(defn)
    for r in reports:
        state = apply_report(state, r)
    return state


def days(n: int) -> timedelta:
    return timedelta(days=n)

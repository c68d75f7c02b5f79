"""Status as it was on a past date (`?as_of=DATE`).

The state is rebuilt from the stored events with as_of <= the date and evaluated with
today = that date. Because the aggregate state is a pure function of the set of events, this
is exact, not an approximation. `known_by` additionally drops events received after a given
instant, for "what did we say at the time" rather than "what the data now says about then".
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime

from services.kpi.domain.model import (
    Evaluation,
    KpiDefinition,
    MilestoneDefinition,
    MilestoneReport,
    Observation,
)
from services.kpi.domain.rules import evaluate_kpi, evaluate_milestone
from services.kpi.domain.state import KpiState, MilestoneState, apply_observation, apply_report


def kpi_state_from(
    defn: KpiDefinition,
    observations: Iterable[Observation],
    on: date | None = None,
    known_by: datetime | None = None,
) -> KpiState:
    state = KpiState.for_definition(defn)
    for obs in observations:
        if (on is None or obs.as_of <= on) and (known_by is None or obs.received_at <= known_by):
            state = apply_observation(state, obs)
    return state


def milestone_state_from(
    defn: MilestoneDefinition,
    reports: Iterable[MilestoneReport],
    on: date | None = None,
    known_by: datetime | None = None,
) -> MilestoneState:
    state = MilestoneState.for_definition(defn)
    for report in reports:
        if (on is None or report.as_of <= on) and (
            known_by is None or report.received_at <= known_by
        ):
            state = apply_report(state, report)
    return state


def evaluate_kpi_as_of(
    defn: KpiDefinition,
    observations: Iterable[Observation],
    on: date,
    known_by: datetime | None = None,
) -> Evaluation:
    return evaluate_kpi(defn, kpi_state_from(defn, observations, on, known_by), on)


def evaluate_milestone_as_of(
    defn: MilestoneDefinition,
    reports: Iterable[MilestoneReport],
    on: date,
    known_by: datetime | None = None,
) -> Evaluation:
    return evaluate_milestone(defn, milestone_state_from(defn, reports, on, known_by), on)

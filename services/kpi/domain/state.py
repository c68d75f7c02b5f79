"""Incremental per-subject aggregates: what the service persists per KPI and per milestone.

Each state is a bounded summary and a pure function of the *set* of events applied to it:
every field is a join (max / min / top-N by a total order on event fields), so applying
events in any order gives the same state and applying an event twice is the same as once.
Events are ordered by as_of (the date the value describes); among events with the same as_of,
the revision that arrived last wins (model.revision_key: the record offset in the KPI's
partition, never the sender's time), so the state is a function of the set of (event, arrival)
pairs, whatever order the consumer folds them in.

Exactly-once by event id is the store's job (a unique index); the state only has to be
idempotent for the event it is given. A change to the definition that changes the state's
configuration (forecast window, fiscal years referred to by relative targets) needs a
rebuild from the stored observations.
"""

from __future__ import annotations

from datetime import date
from typing import Self

from pydantic import BaseModel, ConfigDict, Field

from services.kpi.domain.fiscal import fiscal_year_of
from services.kpi.domain.model import (
    KpiDefinition,
    MilestoneDefinition,
    MilestoneReport,
    Observation,
    ReportedState,
)

MILESTONE_WINDOW = 4


class _State(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def _newer(a: Observation, b: Observation) -> Observation:
    """The revision that counts among two observations of the same as_of."""
    return a if a.revision_key >= b.revision_key else b


class KpiState(_State):
    kpi_id: str
    window_size: int = Field(ge=2)
    # Fiscal years a relative target refers to; their latest observation is kept in anchors.
    anchor_years: frozenset[int] = frozenset()
    # The most recent `window_size` as_of dates, ascending, one observation (revision) each.
    window: tuple[Observation, ...] = ()
    # The earliest observation ever: the start of the plan when there is no baseline.
    first: Observation | None = None
    # Per anchor fiscal year, the latest observation within it; ascending by as_of.
    anchors: tuple[Observation, ...] = ()

    @classmethod
    def for_definition(cls, defn: KpiDefinition) -> Self:
        return cls(
            kpi_id=defn.id,
            window_size=defn.forecast_window,
            anchor_years=defn.anchor_fiscal_years,
        )

    @property
    def latest(self) -> Observation | None:
        return self.window[-1] if self.window else None

    def anchor_map(self) -> dict[int, Observation]:
        return {fiscal_year_of(obs.as_of): obs for obs in self.anchors}


def _merge_window(
    window: tuple[Observation, ...], obs: Observation, size: int
) -> tuple[Observation, ...]:
    by_date = {o.as_of: o for o in window}
    current = by_date.get(obs.as_of)
    by_date[obs.as_of] = obs if current is None else _newer(current, obs)
    # The set of dates only grows, so evicting the oldest keeps exactly the top `size`.
    return tuple(by_date[d] for d in sorted(by_date)[-size:])


def _merge_first(first: Observation | None, obs: Observation) -> Observation:
    if first is None or obs.as_of < first.as_of:
        return obs
    if obs.as_of == first.as_of:
        return _newer(first, obs)
    return first


def _merge_anchors(
    anchors: tuple[Observation, ...], years: frozenset[int], obs: Observation
) -> tuple[Observation, ...]:
    year = fiscal_year_of(obs.as_of)
    if year not in years:
        return anchors
    by_year = {fiscal_year_of(o.as_of): o for o in anchors}
    current = by_year.get(year)
    if current is None or obs.as_of > current.as_of:
        by_year[year] = obs
    elif obs.as_of == current.as_of:
        by_year[year] = _newer(current, obs)
    return tuple(by_year[y] for y in sorted(by_year))


def apply_observation(state: KpiState, obs: Observation) -> KpiState:
    """Fold one observation into the state; commutative, associative and idempotent."""
    return state.model_copy(
        update={
            "window": _merge_window(state.window, obs, state.window_size),
            "first": _merge_first(state.first, obs),
            "anchors": _merge_anchors(state.anchors, state.anchor_years, obs),
        }
    )


class MilestoneState(_State):
    milestone_id: str
    window_size: int = Field(default=MILESTONE_WINDOW, ge=2)
    # The most recent reports by as_of, ascending, one revision per as_of.
    window: tuple[MilestoneReport, ...] = ()
    # Earliest as_of any report said started (in_progress/done) / done. A superseded revision
    # still counts: these only date an achievement, and a min cannot be retracted.
    first_started_as_of: date | None = None
    first_done_as_of: date | None = None

    @classmethod
    def for_definition(cls, defn: MilestoneDefinition) -> Self:
        return cls(milestone_id=defn.id)

    @property
    def latest(self) -> MilestoneReport | None:
        return self.window[-1] if self.window else None


def _min_date(current: date | None, candidate: date) -> date:
    return candidate if current is None else min(current, candidate)


def apply_report(state: MilestoneState, report: MilestoneReport) -> MilestoneState:
    """Fold one milestone report into the state; commutative, associative and idempotent."""
    by_date = {r.as_of: r for r in state.window}
    current = by_date.get(report.as_of)
    if current is None or report.revision_key > current.revision_key:
        by_date[report.as_of] = report
    window = tuple(by_date[d] for d in sorted(by_date)[-state.window_size :])
    started = state.first_started_as_of
    if report.state in (ReportedState.IN_PROGRESS, ReportedState.DONE):
        started = _min_date(started, report.as_of)
    done = state.first_done_as_of
    if report.state is ReportedState.DONE:
        done = _min_date(done, report.as_of)
    return state.model_copy(
        update={"window": window, "first_started_as_of": started, "first_done_as_of": done}
    )

"""Value types of the KPI status engine: definitions, events, evaluations.

Everything here is immutable. Definitions come from the catalogue; observations, milestone
reports and self-assessments come from events; evaluations are what the rules produce.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from enum import StrEnum
from itertools import pairwise
from typing import Self

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from shared.events.contracts import (
    BAD_STATUSES as BAD_STATUSES,  # re-exported: the domain's vocabulary
)
from shared.events.contracts import STATUS_SEVERITY_ORDER
from shared.events.contracts import Status as Status


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)


# The statuses and their severity order are part of the published contract (status_changed
# events carry them), so they are defined once, in shared/events/contracts.py:
#   overdue > off_track > stale > at_risk > no_data > target_pending > on_track > achieved
# - overdue and off_track are known-bad, so they outrank everything.
# - stale means "we can't tell": a KPI nobody reports on may hide anything and chasing the
#   report is an action, so it outranks at_risk, but not a known off_track.
# - no_data and target_pending are neutral gaps in the catalogue/reporting, not a judgement
#   on progress, so they sit below every bad status and above the good ones.
SEVERITY_ORDER: tuple[Status, ...] = STATUS_SEVERITY_ORDER
_SEVERITY = {status: len(SEVERITY_ORDER) - i for i, status in enumerate(SEVERITY_ORDER)}


def severity(status: Status) -> int:
    """Higher is worse; see SEVERITY_ORDER."""
    return _SEVERITY[status]


def worst(statuses: Iterable[Status]) -> Status | None:
    """The most severe status, or None for no statuses."""
    return max(statuses, key=severity, default=None)


def goodness(status: Status) -> int:
    """Higher is better: the reverse of severity, so one total order serves both rollups and
    the "a better observation never worsens the status" property."""
    return -severity(status)


# Statuses that open (or continue) an episode (see episodes.py): BAD_STATUSES, from the contract.


class Direction(StrEnum):
    INCREASE = "increase"
    DECREASE = "decrease"


class Accumulation(StrEnum):
    """What an observed value measures.

    - level: the KPI's value at as_of (a rate, a share, a count in force).
    - cumulative: a running total at as_of; it cannot go backwards, so the forecast never
      projects a regression from the latest value.
    - per_period: the amount for the fiscal year containing as_of; targets are per fiscal
      year, so the value is compared with the plan at the end of that fiscal year.
    """

    LEVEL = "level"
    CUMULATIVE = "cumulative"
    PER_PERIOD = "per_period"


class Comparator(StrEnum):
    AT_LEAST = "at_least"
    AT_MOST = "at_most"
    ABOUT = "about"


class RelativeTarget(_Frozen):
    """A target stated against a base: "30% below FY2020" is base_fiscal_year=2020,
    change_ratio=-0.30. Exactly one of base_value / base_fiscal_year."""

    base_value: float | None = None
    base_fiscal_year: int | None = None
    change_ratio: float = Field(gt=-1.0)

    @model_validator(mode="after")
    def _one_base(self) -> Self:
        if (self.base_value is None) == (self.base_fiscal_year is None):
            raise ValueError("give exactly one of base_value, base_fiscal_year")
        return self


class Target(_Frozen):
    """A staged target: `value` (or `relative`) to be met by `deadline`.

    comparator None means "the direction's comparator" (at_least for increase, at_most for
    decrease). tolerance is absolute, in the KPI's unit: at_least is met when
    value >= target - tolerance, at_most when value <= target + tolerance, about when
    |value - target| <= tolerance.
    """

    value: float | None = None
    relative: RelativeTarget | None = None
    deadline: date
    comparator: Comparator | None = None
    tolerance: float = Field(default=0.0, ge=0.0)

    @model_validator(mode="after")
    def _one_value(self) -> Self:
        if (self.value is None) == (self.relative is None):
            raise ValueError("give exactly one of value, relative")
        return self


class Baseline(_Frozen):
    value: float
    as_of: date


class KpiThresholds(_Frozen):
    """Per-KPI thresholds; the defaults are the catalogue defaults.

    Tolerances are fractions of the planned change from the start value to the relevant
    target (see rules.py, K6-K8).
    """

    at_risk_tolerance: float = Field(default=0.10, ge=0.0)
    off_track_tolerance: float = Field(default=0.25, ge=0.0)
    reporting_cadence_days: int = Field(default=92, gt=0)
    stale_grace_days: int = Field(default=30, ge=0)

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.at_risk_tolerance > self.off_track_tolerance:
            raise ValueError("at_risk_tolerance must not exceed off_track_tolerance")
        return self


class MilestoneThresholds(_Frozen):
    reporting_cadence_days: int = Field(default=92, gt=0)
    stale_grace_days: int = Field(default=30, ge=0)
    # Past this fraction of [planned_start, deadline] with nothing started -> at_risk.
    no_progress_time_fraction: float = Field(default=0.5, gt=0.0, le=1.0)


DEFAULT_KPI_THRESHOLDS = KpiThresholds()
DEFAULT_MILESTONE_THRESHOLDS = MilestoneThresholds()


class KpiDefinition(_Frozen):
    id: str
    measure_id: str
    ministries: tuple[str, ...] = ()
    direction: Direction
    accumulation: Accumulation = Accumulation.LEVEL
    baseline: Baseline | None = None
    # Staged targets by strictly increasing deadline; empty = target not yet set.
    targets: tuple[Target, ...] = ()
    thresholds: KpiThresholds = DEFAULT_KPI_THRESHOLDS
    # Observations kept for the forecast (the most recent by as_of).
    forecast_window: int = Field(default=8, ge=2)

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        deadlines = [t.deadline for t in self.targets]
        if any(a >= b for a, b in pairwise(deadlines)):
            raise ValueError("target deadlines must be strictly increasing")
        if self.baseline is not None and deadlines and deadlines[0] <= self.baseline.as_of:
            raise ValueError("the first target deadline must be after the baseline date")
        wrong = Comparator.AT_MOST if self.direction is Direction.INCREASE else Comparator.AT_LEAST
        if any(t.comparator is wrong for t in self.targets):
            raise ValueError(f"comparator {wrong} contradicts direction {self.direction}")
        return self

    def comparator(self, target: Target) -> Comparator:
        if target.comparator is not None:
            return target.comparator
        if self.direction is Direction.INCREASE:
            return Comparator.AT_LEAST
        return Comparator.AT_MOST

    @property
    def anchor_fiscal_years(self) -> frozenset[int]:
        """Fiscal years whose observed value a relative target refers to."""
        return frozenset(
            t.relative.base_fiscal_year
            for t in self.targets
            if t.relative is not None and t.relative.base_fiscal_year is not None
        )


class MilestoneKind(StrEnum):
    """deliver: met when done. start: met by starting ("令和５年度から運用"), i.e. the
    latest report is in_progress or done."""

    DELIVER = "deliver"
    START = "start"


class MilestoneDefinition(_Frozen):
    id: str
    measure_id: str
    ministries: tuple[str, ...] = ()
    kind: MilestoneKind = MilestoneKind.DELIVER
    deadline: date
    # When work was planned to begin; enables the "nothing started yet" rule.
    planned_start: date | None = None
    thresholds: MilestoneThresholds = DEFAULT_MILESTONE_THRESHOLDS

    @model_validator(mode="after")
    def _start_before_deadline(self) -> Self:
        if self.planned_start is not None and self.planned_start >= self.deadline:
            raise ValueError("planned_start must be before the deadline")
        return self


# The arrival of an event stored before arrival order was recorded: older than any recorded one.
UNKNOWN_ARRIVAL = -1
RevisionKey = tuple[int, AwareDatetime, str]


def revision_key(arrival: int, received_at: AwareDatetime, event_id: str) -> RevisionKey:
    """Which of two reports of the same as_of counts: the one the system received last (its
    record's offset in the KPI's partition), not the one the sender dated last (its CloudEvents
    time, which the sender chooses: a report dated 9999-12-31 could never be corrected). The
    sender's time and the event id only break ties between events of unknown arrival."""
    return (arrival, received_at, event_id)


class Observation(_Frozen):
    """One reported value of a KPI. as_of is the date the value describes; among reports
    with the same as_of the last to arrive is the revision that counts (see revision_key)."""

    event_id: str
    value: float
    as_of: date
    received_at: AwareDatetime
    # The event's first record offset in its (the KPI's) partition of the events topic.
    arrival: int = UNKNOWN_ARRIVAL

    @property
    def revision_key(self) -> RevisionKey:
        return revision_key(self.arrival, self.received_at, self.event_id)


class ReportedState(StrEnum):
    NOT_STARTED = "not_started"
    IN_PROGRESS = "in_progress"
    DONE = "done"
    BLOCKED = "blocked"


class MilestoneReport(_Frozen):
    """One progress report. For a start-kind milestone, expected_completion is the expected
    start date."""

    event_id: str
    state: ReportedState
    percent_complete: float | None = Field(default=None, ge=0.0, le=100.0)
    expected_completion: date | None = None
    as_of: date
    received_at: AwareDatetime
    # As Observation.arrival.
    arrival: int = UNKNOWN_ARRIVAL

    @property
    def revision_key(self) -> RevisionKey:
        return revision_key(self.arrival, self.received_at, self.event_id)


class AssessmentRating(StrEnum):
    ON_TRACK = "on_track"
    AT_RISK = "at_risk"
    OFF_TRACK = "off_track"


class SelfAssessment(_Frozen):
    """A ministry's own rating of a measure (`measure.assessed`)."""

    event_id: str
    measure_id: str
    rating: AssessmentRating
    as_of: date
    received_at: AwareDatetime
    comment: str | None = None


def latest_assessment(current: SelfAssessment | None, incoming: SelfAssessment) -> SelfAssessment:
    """Keep the assessment with the greatest (as_of, received_at, event_id): order-independent
    and idempotent, like the observation state."""
    if current is None:
        return incoming
    key = (incoming.as_of, incoming.received_at, incoming.event_id)
    if key > (current.as_of, current.received_at, current.event_id):
        return incoming
    return current


class SubjectKind(StrEnum):
    KPI = "kpi"
    MILESTONE = "milestone"


InputValue = str | float | int | None


class Explanation(_Frozen):
    """Why a status was chosen: the rule, its inputs, and the events that were the evidence."""

    rule_id: str
    message: str
    inputs: dict[str, InputValue] = Field(default_factory=dict)
    evidence: tuple[str, ...] = ()


class Evaluation(_Frozen):
    subject_id: str
    subject_kind: SubjectKind
    status: Status
    explanation: Explanation
    evaluated_on: date
    latest_as_of: date | None = None
    days_late: int | None = None
    # Numeric KPIs
    latest_value: float | None = None
    planned_value: float | None = None
    next_deadline: date | None = None
    next_target_value: float | None = None
    forecast_value: float | None = None
    projected_reach_date: date | None = None
    # Milestones
    reported_state: ReportedState | None = None
    percent_complete: float | None = None
    expected_completion: date | None = None

"""Status rules: the single place to check the engine's behaviour against.

Rules are tried in order; the first that fires decides the status and becomes the
explanation's rule_id. `today` is always passed in; nothing here reads the clock.

Numeric KPIs (evaluate_kpi). "Latest" is the observation with the greatest as_of on or before
today. "Gap ratio" is the shortfall of the latest value behind the plan, in the direction of
progress, divided by the planned change from the start value to the target governing that
date (so 0.10 means "10% of the way to the target behind"). Per-period KPIs are compared with
the plan at the end of the fiscal year their as_of falls in.
  K1 target_pending  no target is set, or a relative target's base fiscal year has no value.
  K2 no_data         no observation on or before today.
  K3 achieved        the latest value meets the final target (comparator and tolerance).
  K4 overdue         the final deadline is before today and K3 did not fire;
                     days_late = today - final deadline.
  K5 stale           the latest as_of is more than cadence + grace days before today.
  K6 off_track       gap ratio > off_track_tolerance.
  K7 at_risk         gap ratio > at_risk_tolerance.
  K8 at_risk         the forecast at the next deadline falls short of that target by more
                     than at_risk_tolerance of the planned change to it (needs >= 2 dates).
  K9 on_track        none of the above.

Milestones (evaluate_milestone). "Met" means the latest report is done (deliver kind), or
in_progress/done (start kind: "令和５年度から運用" is met by starting).
  M1 no_data         no report on or before today.
  M2 achieved        met; days_late = first met date - deadline when that is positive.
  M3 overdue         the deadline is before today and not met; days_late = today - deadline.
  M4 stale           the latest report's as_of is more than cadence + grace days before today.
  M5 off_track       the latest report is blocked.
  M6 at_risk         expected completion is after the deadline.
  M7 at_risk         no progress: percent complete did not rise between the last two reports,
                     or nothing has started (not_started or 0%) once no_progress_time_fraction
                     of [planned_start, deadline] has elapsed.
  M8 on_track        none of the above.

Why overdue (K4/M3) precedes stale: once the deadline has passed without a report of success,
the silence is itself the answer. Why stale precedes the progress rules: an old report says
nothing about today. The forecast (K8) can only make an on-track KPI at_risk, never better.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Generic, TypeVar

from services.kpi.domain.arithmetic import ratio
from services.kpi.domain.forecast import Forecast, forecast
from services.kpi.domain.model import (
    Evaluation,
    Explanation,
    InputValue,
    KpiDefinition,
    MilestoneDefinition,
    MilestoneKind,
    MilestoneReport,
    Observation,
    ReportedState,
    Status,
    SubjectKind,
)
from services.kpi.domain.state import KpiState, MilestoneState
from services.kpi.domain.trajectory import (
    ResolvedTarget,
    Trajectory,
    UnresolvedBase,
    build_trajectory,
    comparison_date,
    resolve_targets,
    shortfall,
)

F = TypeVar("F")


@dataclass(frozen=True, slots=True)
class Finding:
    message: str
    inputs: dict[str, InputValue] = field(default_factory=dict)
    evidence: tuple[str, ...] = ()
    days_late: int | None = None


@dataclass(frozen=True, slots=True)
class Rule(Generic[F]):
    id: str
    status: Status
    check: Callable[[F], Finding | None]

    @property
    def description(self) -> str:
        return (self.check.__doc__ or "").strip()


def _num(value: float) -> str:
    return f"{value:.6g}"


def _pct(ratio: float) -> str:
    return f"{ratio:.1%}"


# --------------------------------------------------------------------------- numeric KPIs


@dataclass(frozen=True, slots=True)
class KpiFacts:
    """Everything the KPI rules look at, computed once per evaluation."""

    defn: KpiDefinition
    today: date
    points: tuple[Observation, ...]
    latest: Observation | None
    targets: tuple[ResolvedTarget, ...]
    unresolved: UnresolvedBase | None
    base_evidence: tuple[str, ...]
    trajectory: Trajectory | None
    compared_on: date | None
    planned: float | None
    gap_target: ResolvedTarget | None
    gap_ratio: float | None
    next_target: ResolvedTarget | None
    # Projection towards the next target (the final one once every deadline has passed).
    projection: Forecast | None
    forecast_ratio: float | None
    # The first observation, when it is the start of the plan (no baseline).
    start_event_id: str | None

    @property
    def final(self) -> ResolvedTarget | None:
        return self.targets[-1] if self.targets else None

    @property
    def forecast(self) -> Forecast | None:
        """The forecast at the next deadline; None once every deadline has passed."""
        return self.projection if self.next_target is not None else None

    def latest_evidence(self) -> tuple[str, ...]:
        ids = [*self.base_evidence]
        if self.start_event_id is not None:
            ids.append(self.start_event_id)
        if self.latest is not None:
            ids.append(self.latest.event_id)
        return tuple(dict.fromkeys(ids))

    def inputs(self) -> dict[str, InputValue]:
        latest, final = self.latest, self.final
        return {
            "today": self.today.isoformat(),
            "latest_value": None if latest is None else latest.value,
            "latest_as_of": None if latest is None else latest.as_of.isoformat(),
            "planned_value": self.planned,
            "compared_on": None if self.compared_on is None else self.compared_on.isoformat(),
            "gap_ratio": self.gap_ratio,
            "next_deadline": None
            if self.next_target is None
            else self.next_target.deadline.isoformat(),
            "next_target_value": None if self.next_target is None else self.next_target.value,
            "forecast_value": None if self.forecast is None else self.forecast.value_at_deadline,
            "final_deadline": None if final is None else final.deadline.isoformat(),
            "final_target_value": None if final is None else final.value,
        }


def kpi_facts(defn: KpiDefinition, state: KpiState, today: date) -> KpiFacts:
    points = tuple(obs for obs in state.window if obs.as_of <= today)
    latest = points[-1] if points else None
    anchors = {fy: obs for fy, obs in state.anchor_map().items() if obs.as_of <= today}
    resolved = resolve_targets(defn, anchors)
    if isinstance(resolved, UnresolvedBase):
        targets: tuple[ResolvedTarget, ...] = ()
        unresolved: UnresolvedBase | None = resolved
        base_evidence: tuple[str, ...] = ()
    else:
        (targets, base_evidence), unresolved = resolved, None
    first = state.first if points else None
    trajectory = build_trajectory(defn, targets, first)
    compared_on: date | None = None
    planned: float | None = None
    gap_target: ResolvedTarget | None = None
    gap_ratio: float | None = None
    if trajectory is not None and latest is not None:
        compared_on = comparison_date(defn, latest.as_of)
        planned = trajectory.planned_at(compared_on)
        gap_target = trajectory.target_for(compared_on)
        gap = shortfall(defn.direction, planned, latest.value)
        gap_ratio = ratio(gap, trajectory.span_to(gap_target))
    next_target = next((t for t in targets if t.deadline >= today), None)
    projection: Forecast | None = None
    forecast_ratio: float | None = None
    if trajectory is not None and points:
        projection = forecast(
            points,
            direction=defn.direction,
            accumulation=defn.accumulation,
            target=next_target or trajectory.final,
        )
        if projection is not None and next_target is not None:
            miss = shortfall(defn.direction, next_target.value, projection.value_at_deadline)
            forecast_ratio = ratio(miss, trajectory.span_to(next_target))
    return KpiFacts(
        defn=defn,
        today=today,
        points=points,
        latest=latest,
        targets=targets,
        unresolved=unresolved,
        base_evidence=base_evidence,
        trajectory=trajectory,
        compared_on=compared_on,
        planned=planned,
        gap_target=gap_target,
        gap_ratio=gap_ratio,
        next_target=next_target,
        projection=projection,
        forecast_ratio=forecast_ratio,
        start_event_id=(
            first.event_id
            if first is not None and trajectory is not None and defn.baseline is None
            else None
        ),
    )


def _k1_target_pending(f: KpiFacts) -> Finding | None:
    """No target is set, or a relative target's base fiscal year has no value yet."""
    if f.unresolved is not None:
        year = f.unresolved.base_fiscal_year
        return Finding(
            f"The target due {f.unresolved.deadline} is relative to FY{year}, "
            f"which has no value yet.",
            {"base_fiscal_year": year, "deadline": f.unresolved.deadline.isoformat()},
            f.latest_evidence(),
        )
    if not f.targets:
        return Finding("No target has been set for this KPI.", {}, f.latest_evidence())
    return None


def _k2_no_data(f: KpiFacts) -> Finding | None:
    """No observation on or before today."""
    if f.latest is None:
        return Finding("No value has been reported.", {}, ())
    return None


def _k3_achieved(f: KpiFacts) -> Finding | None:
    """The latest value meets the final target."""
    final, latest = f.final, f.latest
    assert final is not None  # K1
    assert latest is not None  # K2
    if not final.is_met_by(latest.value):
        return None
    return Finding(
        f"Latest value {_num(latest.value)} ({latest.as_of}) meets the final target "
        f"{_num(final.value)} ({final.comparator}, due {final.deadline}).",
        {"comparator": final.comparator.value, "tolerance": final.tolerance},
        f.latest_evidence(),
    )


def _k4_overdue(f: KpiFacts) -> Finding | None:
    """The final deadline is before today and the final target is not met."""
    final, latest = f.final, f.latest
    assert final is not None
    assert latest is not None
    if final.deadline >= f.today:
        return None
    days = (f.today - final.deadline).days
    return Finding(
        f"The final target {_num(final.value)} was due {final.deadline}; the latest value is "
        f"{_num(latest.value)} ({latest.as_of}), {days} days late.",
        {"days_late": days},
        f.latest_evidence(),
        days_late=days,
    )


def _stale_finding(
    what: str,
    latest_as_of: date,
    today: date,
    cadence_days: int,
    grace_days: int,
    evidence: tuple[str, ...],
) -> Finding | None:
    """Shared by K5 and M4: a report older than the cadence plus grace."""
    allowed = cadence_days + grace_days
    age = (today - latest_as_of).days
    if age <= allowed:
        return None
    return Finding(
        f"The latest {what} is as of {latest_as_of}, {age} days ago; a report is expected "
        f"every {cadence_days} days (+{grace_days} grace).",
        {"age_days": age, "allowed_days": allowed},
        evidence,
    )


def _k5_stale(f: KpiFacts) -> Finding | None:
    """The latest value is older than the reporting cadence plus grace."""
    latest = f.latest
    assert latest is not None
    thresholds = f.defn.thresholds
    return _stale_finding(
        "value",
        latest.as_of,
        f.today,
        thresholds.reporting_cadence_days,
        thresholds.stale_grace_days,
        f.latest_evidence(),
    )


def _gap_finding(f: KpiFacts, tolerance: float, verdict: str) -> Finding | None:
    if f.gap_ratio is None or f.gap_ratio <= tolerance:
        return None
    latest, planned, target = f.latest, f.planned, f.gap_target
    assert latest is not None
    assert planned is not None
    assert target is not None
    return Finding(
        f"Latest value {_num(latest.value)} ({latest.as_of}) is behind the plan "
        f"{_num(planned)} by {_pct(f.gap_ratio)} of the planned change to the target "
        f"{_num(target.value)} due {target.deadline} ({verdict} beyond {_pct(tolerance)}).",
        {"tolerance": tolerance},
        f.latest_evidence(),
    )


def _k6_off_track(f: KpiFacts) -> Finding | None:
    """The gap ratio exceeds off_track_tolerance."""
    return _gap_finding(f, f.defn.thresholds.off_track_tolerance, "off track")


def _k7_at_risk_behind_plan(f: KpiFacts) -> Finding | None:
    """The gap ratio exceeds at_risk_tolerance."""
    return _gap_finding(f, f.defn.thresholds.at_risk_tolerance, "at risk")


def _k8_at_risk_forecast(f: KpiFacts) -> Finding | None:
    """The forecast at the next deadline misses that target by more than at_risk_tolerance."""
    tolerance = f.defn.thresholds.at_risk_tolerance
    if f.forecast is None or f.forecast_ratio is None or f.forecast_ratio <= tolerance:
        return None
    target = f.next_target
    assert target is not None
    return Finding(
        f"At the current trend ({_num(f.forecast.slope_per_day)} per day) the value is forecast "
        f"at {_num(f.forecast.value_at_deadline)} on {target.deadline}, short of the target "
        f"{_num(target.value)} by {_pct(f.forecast_ratio)} of the planned change "
        f"(tolerance {_pct(tolerance)}).",
        {"tolerance": tolerance, "forecast_ratio": f.forecast_ratio},
        tuple(dict.fromkeys((*f.latest_evidence(), *f.forecast.evidence))),
    )


def _k9_on_track(f: KpiFacts) -> Finding | None:
    """Nothing above fired."""
    latest = f.latest
    assert latest is not None
    planned = "" if f.planned is None else f" against the plan {_num(f.planned)}"
    evidence = f.latest_evidence()
    if f.forecast is not None:
        evidence = tuple(dict.fromkeys((*evidence, *f.forecast.evidence)))
    return Finding(
        f"Latest value {_num(latest.value)} ({latest.as_of}) is on track{planned}.",
        {},
        evidence,
    )


KPI_RULES: tuple[Rule[KpiFacts], ...] = (
    Rule("K1", Status.TARGET_PENDING, _k1_target_pending),
    Rule("K2", Status.NO_DATA, _k2_no_data),
    Rule("K3", Status.ACHIEVED, _k3_achieved),
    Rule("K4", Status.OVERDUE, _k4_overdue),
    Rule("K5", Status.STALE, _k5_stale),
    Rule("K6", Status.OFF_TRACK, _k6_off_track),
    Rule("K7", Status.AT_RISK, _k7_at_risk_behind_plan),
    Rule("K8", Status.AT_RISK, _k8_at_risk_forecast),
    Rule("K9", Status.ON_TRACK, _k9_on_track),
)


def _first_match(rules: Sequence[Rule[F]], facts: F) -> tuple[Rule[F], Finding]:
    for rule in rules:
        finding = rule.check(facts)
        if finding is not None:
            return rule, finding
    raise AssertionError("the last rule always fires")


def _evaluation(
    subject_id: str,
    kind: SubjectKind,
    rule: Rule[F],
    finding: Finding,
    facts_inputs: dict[str, InputValue],
    today: date,
    latest_as_of: date | None,
    **fields: Any,
) -> Evaluation:
    """The one way a rule's finding becomes an Evaluation (KPIs and milestones alike); `fields`
    are the kind's own ones."""
    return Evaluation(
        subject_id=subject_id,
        subject_kind=kind,
        status=rule.status,
        explanation=Explanation(
            rule_id=rule.id,
            message=finding.message,
            inputs={**facts_inputs, **finding.inputs},
            evidence=finding.evidence,
        ),
        evaluated_on=today,
        latest_as_of=latest_as_of,
        days_late=finding.days_late,
        **fields,
    )


def evaluate_kpi(defn: KpiDefinition, state: KpiState, today: date) -> Evaluation:
    """The status of a numeric KPI on `today` from its aggregate state."""
    facts = kpi_facts(defn, state, today)
    rule, finding = _first_match(KPI_RULES, facts)
    latest = facts.latest
    return _evaluation(
        defn.id,
        SubjectKind.KPI,
        rule,
        finding,
        facts.inputs(),
        today,
        None if latest is None else latest.as_of,
        latest_value=None if latest is None else latest.value,
        planned_value=facts.planned,
        next_deadline=None if facts.next_target is None else facts.next_target.deadline,
        next_target_value=None if facts.next_target is None else facts.next_target.value,
        forecast_value=None if facts.forecast is None else facts.forecast.value_at_deadline,
        projected_reach_date=None if facts.projection is None else facts.projection.reach_date,
    )


# --------------------------------------------------------------------------- milestones


@dataclass(frozen=True, slots=True)
class MilestoneFacts:
    defn: MilestoneDefinition
    today: date
    latest: MilestoneReport | None
    previous: MilestoneReport | None
    met_on: date | None

    @property
    def met(self) -> bool:
        if self.latest is None:
            return False
        if self.defn.kind is MilestoneKind.START:
            return self.latest.state in (ReportedState.IN_PROGRESS, ReportedState.DONE)
        return self.latest.state is ReportedState.DONE

    def evidence(self) -> tuple[str, ...]:
        return () if self.latest is None else (self.latest.event_id,)

    def inputs(self) -> dict[str, InputValue]:
        latest = self.latest
        return {
            "today": self.today.isoformat(),
            "kind": self.defn.kind.value,
            "deadline": self.defn.deadline.isoformat(),
            "reported_state": None if latest is None else latest.state.value,
            "percent_complete": None if latest is None else latest.percent_complete,
            "expected_completion": (
                None
                if latest is None or latest.expected_completion is None
                else latest.expected_completion.isoformat()
            ),
            "latest_as_of": None if latest is None else latest.as_of.isoformat(),
        }


def milestone_facts(
    defn: MilestoneDefinition, state: MilestoneState, today: date
) -> MilestoneFacts:
    reports = [r for r in state.window if r.as_of <= today]
    first_met = (
        state.first_started_as_of if defn.kind is MilestoneKind.START else state.first_done_as_of
    )
    return MilestoneFacts(
        defn=defn,
        today=today,
        latest=reports[-1] if reports else None,
        previous=reports[-2] if len(reports) >= 2 else None,
        met_on=first_met if first_met is not None and first_met <= today else None,
    )


def _m1_no_data(f: MilestoneFacts) -> Finding | None:
    """No report on or before today."""
    if f.latest is None:
        return Finding("No progress has been reported.", {}, ())
    return None


def _m2_achieved(f: MilestoneFacts) -> Finding | None:
    """The milestone is met (done; for the start kind, started)."""
    if not f.met:
        return None
    latest = f.latest
    assert latest is not None
    met_on = f.met_on or latest.as_of
    late = (met_on - f.defn.deadline).days
    verb = "started" if f.defn.kind is MilestoneKind.START else "done"
    timing = f", {late} days after the deadline {f.defn.deadline}" if late > 0 else ""
    return Finding(
        f"Reported {verb} as of {met_on}{timing}.",
        {"met_on": met_on.isoformat(), "days_late": late if late > 0 else None},
        f.evidence(),
        days_late=late if late > 0 else None,
    )


def _m3_overdue(f: MilestoneFacts) -> Finding | None:
    """The deadline is before today and the milestone is not met."""
    if f.defn.deadline >= f.today:
        return None
    days = (f.today - f.defn.deadline).days
    what = "started" if f.defn.kind is MilestoneKind.START else "done"
    return Finding(
        f"Due {f.defn.deadline} and not {what}: {days} days late.",
        {"days_late": days},
        f.evidence(),
        days_late=days,
    )


def _m4_stale(f: MilestoneFacts) -> Finding | None:
    """The latest report is older than the reporting cadence plus grace."""
    latest = f.latest
    assert latest is not None
    thresholds = f.defn.thresholds
    return _stale_finding(
        "report",
        latest.as_of,
        f.today,
        thresholds.reporting_cadence_days,
        thresholds.stale_grace_days,
        f.evidence(),
    )


def _m5_blocked(f: MilestoneFacts) -> Finding | None:
    """The latest report says blocked."""
    latest = f.latest
    assert latest is not None
    if latest.state is not ReportedState.BLOCKED:
        return None
    return Finding(f"Reported blocked as of {latest.as_of}.", {}, f.evidence())


def _m6_late_expected(f: MilestoneFacts) -> Finding | None:
    """Expected completion is after the deadline."""
    latest = f.latest
    assert latest is not None
    expected = latest.expected_completion
    if expected is None or expected <= f.defn.deadline:
        return None
    days = (expected - f.defn.deadline).days
    return Finding(
        f"Expected completion {expected} is {days} days after the deadline {f.defn.deadline}.",
        {"expected_days_late": days},
        f.evidence(),
    )


def _m7_no_progress(f: MilestoneFacts) -> Finding | None:
    """Percent complete did not rise between the last two reports, or nothing has started
    once no_progress_time_fraction of [planned_start, deadline] has elapsed."""
    latest, previous = f.latest, f.previous
    assert latest is not None
    if (
        previous is not None
        and latest.percent_complete is not None
        and previous.percent_complete is not None
        and latest.percent_complete <= previous.percent_complete
    ):
        return Finding(
            f"No progress: {_num(latest.percent_complete)}% complete as of {latest.as_of}, "
            f"{_num(previous.percent_complete)}% as of {previous.as_of}.",
            {"previous_percent_complete": previous.percent_complete},
            (previous.event_id, latest.event_id),
        )
    start = f.defn.planned_start
    nothing_started = latest.state is ReportedState.NOT_STARTED or latest.percent_complete == 0
    if start is None or not nothing_started:
        return None
    elapsed = (f.today - start).days / (f.defn.deadline - start).days
    threshold = f.defn.thresholds.no_progress_time_fraction
    if elapsed < threshold:
        return None
    return Finding(
        f"Nothing started as of {latest.as_of} with {_pct(elapsed)} of the time from "
        f"{start} to {f.defn.deadline} elapsed (threshold {_pct(threshold)}).",
        {"elapsed_fraction": elapsed, "threshold": threshold},
        f.evidence(),
    )


def _m8_on_track(f: MilestoneFacts) -> Finding | None:
    """Nothing above fired."""
    latest = f.latest
    assert latest is not None
    return Finding(
        f"Reported {latest.state.value} as of {latest.as_of}, on course for {f.defn.deadline}.",
        {},
        f.evidence(),
    )


MILESTONE_RULES: tuple[Rule[MilestoneFacts], ...] = (
    Rule("M1", Status.NO_DATA, _m1_no_data),
    Rule("M2", Status.ACHIEVED, _m2_achieved),
    Rule("M3", Status.OVERDUE, _m3_overdue),
    Rule("M4", Status.STALE, _m4_stale),
    Rule("M5", Status.OFF_TRACK, _m5_blocked),
    Rule("M6", Status.AT_RISK, _m6_late_expected),
    Rule("M7", Status.AT_RISK, _m7_no_progress),
    Rule("M8", Status.ON_TRACK, _m8_on_track),
)


def evaluate_milestone(defn: MilestoneDefinition, state: MilestoneState, today: date) -> Evaluation:
    """The status of a milestone on `today` from its aggregate state."""
    facts = milestone_facts(defn, state, today)
    rule, finding = _first_match(MILESTONE_RULES, facts)
    latest = facts.latest
    return _evaluation(
        defn.id,
        SubjectKind.MILESTONE,
        rule,
        finding,
        facts.inputs(),
        today,
        None if latest is None else latest.as_of,
        next_deadline=defn.deadline,
        reported_state=None if latest is None else latest.state,
        percent_complete=None if latest is None else latest.percent_complete,
        expected_completion=None if latest is None else latest.expected_completion,
    )

"""The demo scenario: which catalogue subjects report on course, which slip, which ministry goes
silent, and the status each is meant to end in. Pure: no I/O, no clock.

The scenario covers a window of simulated dates [start, end]. Every KPI and milestone reports
every `interval_days` (on its own day of the cycle), every measure is self-assessed quarterly.
Values come from each KPI's own targets and planned trajectory (the engine's, built by
services.kpi.domain from the catalogue entry), so the statuses come out as intended:

- **on course** (most): a KPI reports values months ahead of its planned trajectory, so it
  meets each target before its deadline and is `achieved` once it meets the final one; a
  milestone reports steady progress, expects to finish MET_LEAD_DAYS before its deadline and
  reports done (a start-kind milestone: started) on that day. Anything due before the window
  reports as achieved from its first report.
- **slipping** (about `slip_share` of the subjects whose deadline leaves time to slip inside the
  window): a KPI falls behind its plan until the gap is SLIP_GAP of the planned change
  (`at_risk`, then `off_track`) and is `overdue` once its final deadline passes; a milestone
  pushes its expected completion past the deadline (`at_risk`) and is `overdue` when the
  deadline passes, or, due after the window, reports itself blocked (`off_track`).
- **silent**: one ministry other than the plan's default owner stops reporting SILENCE_DAYS
  before the end; what it had not finished goes `stale` (or `overdue` when a deadline passes).

KPIs without a dated baseline start their trajectory at their first observation, and targets
relative to a base fiscal year need a value for that year: those KPIs also report values for
the start of the plan (and the base year), sent right after their first report in the window.
"""

from __future__ import annotations

import bisect
import hashlib
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from typing import Any, Literal

from services.kpi.adapters.definitions import definition_from_catalogue
from services.kpi.domain.fiscal import fiscal_year_end, fiscal_year_of
from services.kpi.domain.model import (
    Accumulation,
    Direction,
    KpiDefinition,
    MilestoneDefinition,
    MilestoneKind,
    Observation,
)
from services.kpi.domain.trajectory import (
    Trajectory,
    UnresolvedBase,
    build_trajectory,
    comparison_date,
    resolve_targets,
)
from shared.events.contracts import (
    KpiObservedEvent,
    MeasureAssessedEvent,
    MilestoneReportedEvent,
    Status,
)
from shared.events.validation import UnitKind, unit_kind

# On-course KPIs report the value their plan has a forecast window of reports later (so the
# trend the engine fits to that window already runs on the plan's next, maybe steeper, segment
# when the current one ends), plus this share of the planned change in the direction of
# progress.
MARGIN = 0.02
# On-course milestones are done (started) this many days before their deadline.
MET_LEAD_DAYS = 30
# Slipping KPIs fall behind by this share of the planned change (at_risk > 0.10, off_track
# > 0.25 by the engine's default thresholds).
SLIP_GAP = 0.45
# A KPI due inside the window starts slipping this long before its deadline.
SLIP_BEFORE_DEADLINE_DAYS = 120
# A milestone due inside the window pushes its expected completion this long before it.
SLIP_MILESTONE_DAYS = 90
# The silent ministry's last report is at most this long before the end (more than a quarter
# plus the stale grace: its open subjects are stale by the end).
SILENCE_DAYS = 150
SILENT_SHARE_MAX = 0.1
MEASURE_INTERVAL_DAYS = 91
NOTE = "shinchoku demo feed"

SubjectKind = Literal["kpi", "milestone", "measure"]
EVENT_TYPES: dict[str, str] = {
    "kpi": KpiObservedEvent.TYPE,
    "milestone": MilestoneReportedEvent.TYPE,
    "measure": MeasureAssessedEvent.TYPE,
}
# Outside the window a milestone without a deadline is treated as due this far after it.
OPEN_ENDED_YEARS = 5


class Course(StrEnum):
    ON_COURSE = "on_course"
    SLIPPING = "slipping"
    SILENT = "silent"


@dataclass(frozen=True, slots=True)
class Report:
    """One event the feed posts: `data` is the CloudEvent's data, `send_on` the simulated date
    it is sent (its as_of, or for a report about the past, the subject's first report's)."""

    subject_id: str
    kind: SubjectKind
    ministry: str
    as_of: date
    send_on: date
    data: Mapping[str, Any]

    @property
    def event_type(self) -> str:
        return EVENT_TYPES[self.kind]


@dataclass(frozen=True, slots=True)
class SubjectPlan:
    """A KPI or milestone in the scenario: its course, its reports, where it is meant to end."""

    id: str
    kind: Literal["kpi", "milestone"]
    ministry: str
    measure_id: str
    course: Course
    expected: Status
    reports: tuple[Report, ...]
    # Slipping subjects: the first date their reports are behind (None for the others).
    slips_on: date | None = None
    # Every ministry the catalogue lists for it (`ministry` is the one that reports) and its unit.
    ministries: tuple[str, ...] = ()
    unit: str | None = None


@dataclass(frozen=True)
class Scenario:
    start: date
    end: date
    subjects: Mapping[str, SubjectPlan]
    measure_reports: tuple[Report, ...]
    silent_ministry: str | None
    silent_from: date | None
    timeline: tuple[Report, ...] = field(init=False, repr=False)
    _send_days: tuple[int, ...] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        reports = [r for plan in self.subjects.values() for r in plan.reports]
        reports += self.measure_reports
        # Stable: within a day, each subject's reports keep their order (backfill after first).
        timeline = tuple(sorted(reports, key=lambda r: r.send_on))
        object.__setattr__(self, "timeline", timeline)
        object.__setattr__(self, "_send_days", tuple(r.send_on.toordinal() for r in timeline))

    def due(self, after: date | None, upto: date) -> list[Report]:
        """The reports sent on a simulated date in (after, upto], in sending order."""
        low = 0 if after is None else bisect.bisect_right(self._send_days, after.toordinal())
        high = bisect.bisect_right(self._send_days, upto.toordinal())
        return list(self.timeline[low:high])

    @property
    def expected(self) -> dict[str, Status]:
        return {subject_id: plan.expected for subject_id, plan in self.subjects.items()}

    def with_course(self, course: Course) -> list[SubjectPlan]:
        return [plan for plan in self.subjects.values() if plan.course is course]

    def summary(self) -> str:
        slipping = self.with_course(Course.SLIPPING)
        silent = self.with_course(Course.SILENT)
        lines = [
            f"{len(self.subjects)} KPIs and milestones, {len(self.measure_reports)} measure "
            f"assessments, {len(self.timeline)} reports from {self.start} to {self.end}",
            f"  on course: {len(self.with_course(Course.ON_COURSE))}",
            f"  slipping:  {len(slipping)} ("
            + ", ".join(f"{p.id} from {p.slips_on}" for p in slipping)
            + ")",
        ]
        if self.silent_ministry is not None:
            lines.append(
                f"  silent:    {self.silent_ministry} stops reporting after {self.silent_from} "
                f"({len(silent)} subjects)"
            )
        return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# Building


def stable_fraction(seed: str, key: str) -> float:
    """A deterministic number in [0, 1) for `key`: the scenario is the same on every run."""
    digest = hashlib.sha256(f"{seed}:{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def _schedule(first: date, interval_days: int, last: date) -> list[date]:
    days: list[date] = []
    day = first
    while day <= last:
        days.append(day)
        day += timedelta(days=interval_days)
    return days


def _clamp(x: float, low: float, high: float) -> float:
    return max(low, min(high, x))


def _ratio(day: date, since: date, until: date) -> float:
    span = (until - since).days
    return 1.0 if span <= 0 else _clamp((day - since).days / span, 0.0, 1.0)


@dataclass(frozen=True)
class KpiCourse:
    """A KPI's planned trajectory, as the engine will build it, and values relative to it."""

    defn: KpiDefinition
    percent: bool
    whole: bool  # a count: reported as whole numbers (ingest refuses a fraction of a count)
    start_value: float
    # (as_of, value) reported for dates before the window: the start of the plan, base years.
    backfill: tuple[tuple[date, float], ...]
    trajectory: Trajectory | None
    lead_days: int

    @classmethod
    def of(
        cls, defn: KpiDefinition, unit: str | None, plan_start: date, interval_days: int
    ) -> KpiCourse:
        whole = unit_kind(unit) is UnitKind.COUNT
        start_value = float(round(_start_value(defn))) if whole else _start_value(defn)
        years = set(defn.anchor_fiscal_years)
        if defn.baseline is not None:
            years.discard(fiscal_year_of(defn.baseline.as_of))
        dates = {fiscal_year_end(year) for year in years}
        if defn.baseline is None:
            dates.add(min([plan_start, *dates]))
        backfill = tuple((day, start_value) for day in sorted(dates))
        points = [_observation(day, value) for day, value in backfill]
        anchors = {fiscal_year_of(obs.as_of): obs for obs in points}
        resolved = resolve_targets(defn, anchors)
        trajectory = None
        if not isinstance(resolved, UnresolvedBase):
            first = points[0] if points else None
            trajectory = build_trajectory(defn, resolved[0], first)
        lead_days = defn.forecast_window * interval_days
        if defn.accumulation is Accumulation.PER_PERIOD:
            # A year's amount is compared with the plan at the year's end: a year more ahead,
            # and rising within the year, so the trend never looks flat.
            lead_days += 366
        return cls(defn, unit in ("%", "％"), whole, start_value, backfill, trajectory, lead_days)

    @property
    def sign(self) -> float:
        return 1.0 if self.defn.direction is Direction.INCREASE else -1.0

    @property
    def final_deadline(self) -> date | None:
        return None if self.trajectory is None else self.trajectory.final.deadline

    def _bounded(self, value: float) -> float:
        value = max(value, 0.0)
        if self.percent:
            value = min(value, 100.0)
        return float(round(value)) if self.whole else round(value, 2)

    def on_course(self, day: date) -> float:
        """Ahead of the plan: its value `lead_days` later, plus a small margin."""
        if self.trajectory is None:
            return self.start_value
        ahead = day + timedelta(days=self.lead_days)
        span = self.trajectory.span_to(self.trajectory.target_for(ahead))
        return self._bounded(self.trajectory.planned_at(ahead) + self.sign * MARGIN * span)

    def short_of_final(self, day: date) -> float:
        """On course, but not yet meeting the final target (a subject about to slip)."""
        value = self.on_course(day)
        if self.trajectory is None or not self.meets_final(value):
            return value
        final = self.trajectory.final
        span = self.trajectory.span_to(final)
        return self._bounded(final.value - self.sign * (final.tolerance + MARGIN * span))

    def behind(self, day: date, gap: float) -> float:
        """Behind the plan by `gap` of the planned change (the engine's gap ratio)."""
        assert self.trajectory is not None
        compared_on = comparison_date(self.defn, day)
        span = self.trajectory.span_to(self.trajectory.target_for(compared_on))
        return self._bounded(self.trajectory.planned_at(compared_on) - self.sign * gap * span)

    def meets_final(self, value: float) -> bool:
        return self.trajectory is not None and self.trajectory.final.is_met_by(value)


def _start_value(defn: KpiDefinition) -> float:
    """Where a KPI without a baseline starts: a share of its first target."""
    first = defn.targets[0] if defn.targets else None
    if first is None or first.value is None:
        return 1000.0  # a base for relative targets ("30% less than FY2018")
    if defn.direction is Direction.INCREASE:
        return first.value * 0.4 if first.value > 0 else 10.0
    return first.value * 2.0 if first.value > 0 else 100.0


def _observation(day: date, value: float) -> Observation:
    return Observation(
        event_id=f"backfill:{day}",
        value=value,
        as_of=day,
        received_at=datetime(day.year, day.month, day.day, tzinfo=UTC),
    )


@dataclass(frozen=True)
class _Context:
    start: date
    end: date
    plan_start: date
    interval_days: int
    seed: str

    @property
    def window_days(self) -> int:
        return (self.end - self.start).days

    def at_share(self, share: float) -> date:
        return self.start + timedelta(days=round(self.window_days * share))

    def regular_days(self, subject_id: str, interval_days: int | None = None) -> list[date]:
        interval = interval_days or self.interval_days
        phase = math.floor(stable_fraction(self.seed, subject_id) * interval)
        return _schedule(self.start + timedelta(days=phase), interval, self.end)


def _kpi_report(subject: Mapping[str, Any], ministry: str, day: date, value: float) -> Report:
    data = {"kpi_id": subject["id"], "value": value, "as_of": day.isoformat(), "note": NOTE}
    return Report(subject["id"], "kpi", ministry, day, day, data)


def _kpi_plan(
    subject: Mapping[str, Any],
    defn: KpiDefinition,
    ministry: str,
    course: Course,
    ctx: _Context,
    silent_from: date | None,
) -> SubjectPlan:
    kpi = KpiCourse.of(defn, subject.get("unit"), ctx.plan_start, ctx.interval_days)
    days = ctx.regular_days(defn.id)
    final = kpi.final_deadline
    slips_on: date | None = None
    ramp_end = ctx.end
    if course is Course.SLIPPING:
        assert final is not None
        if final <= ctx.end:
            slips_on = max(ctx.start, final - timedelta(days=SLIP_BEFORE_DEADLINE_DAYS))
            ramp_end = final
        else:
            slips_on = ctx.at_share(0.4)
    if course is Course.SILENT:
        assert silent_from is not None
        days = [day for day in days if day <= silent_from]
    reports: list[Report] = []
    for day in days:
        if slips_on is None:
            value = kpi.on_course(day)
        elif day < slips_on:
            value = kpi.short_of_final(day)
        else:
            value = kpi.behind(day, SLIP_GAP * _ratio(day, slips_on, ramp_end))
        reports.append(_kpi_report(subject, ministry, day, value))
    if reports:
        # The start of the plan (and base years), sent right after the first report: alone,
        # an old value would be stale.
        first = reports[0].send_on
        reports[1:1] = [
            replace(_kpi_report(subject, ministry, day, value), send_on=first)
            for day, value in kpi.backfill
        ]
    expected = _kpi_expected(kpi, course, reports, ctx.end)
    return SubjectPlan(
        defn.id, "kpi", ministry, defn.measure_id, course, expected, tuple(reports), slips_on
    )


def _kpi_expected(kpi: KpiCourse, course: Course, reports: Sequence[Report], end: date) -> Status:
    if not reports:
        return Status.NO_DATA
    if kpi.trajectory is None:
        return Status.TARGET_PENDING
    last = max(reports, key=lambda r: r.as_of)
    final = kpi.trajectory.final.deadline
    if kpi.meets_final(float(last.data["value"])):
        return Status.ACHIEVED
    if final < end:
        return Status.OVERDUE
    if course is Course.SLIPPING:
        return Status.OFF_TRACK
    thresholds = kpi.defn.thresholds
    if (end - last.as_of).days > thresholds.reporting_cadence_days + thresholds.stale_grace_days:
        return Status.STALE
    return Status.ON_TRACK


def _milestone_report(
    subject_id: str,
    ministry: str,
    day: date,
    state: str,
    percent: float,
    expected_completion: date | None,
    send_on: date | None = None,
) -> Report:
    data = {
        "milestone_id": subject_id,
        "state": state,
        "percent_complete": round(percent, 1),
        "expected_completion": None
        if expected_completion is None
        else expected_completion.isoformat(),
        "as_of": day.isoformat(),
        "note": NOTE,
    }
    return Report(subject_id, "milestone", ministry, day, send_on or day, data)


def _milestone_plan(
    defn: MilestoneDefinition,
    ministry: str,
    course: Course,
    ctx: _Context,
    silent_from: date | None,
) -> SubjectPlan:
    deadline = defn.deadline
    open_ended = deadline == date.max
    horizon = ctx.end + timedelta(days=365 * OPEN_ENDED_YEARS) if open_ended else deadline
    met_on = horizon - timedelta(days=MET_LEAD_DAYS)
    start_kind = defn.kind is MilestoneKind.START
    waiting = "not_started" if start_kind else "in_progress"
    met = "in_progress" if start_kind else "done"

    def progress(day: date) -> float:
        return 5.0 + 90.0 * _ratio(day, ctx.plan_start, met_on)

    def on_course(day: date, send_on: date | None = None) -> Report:
        if day >= met_on:
            return _milestone_report(defn.id, ministry, day, met, 100.0, met_on, send_on)
        return _milestone_report(defn.id, ministry, day, waiting, progress(day), met_on, send_on)

    days = ctx.regular_days(defn.id)
    slips_on: date | None = None
    reports: list[Report] = []
    if course is Course.SLIPPING:
        if deadline <= ctx.end:
            slips_on = max(ctx.start, deadline - timedelta(days=SLIP_MILESTONE_DAYS))
            blocked_on = None
        else:
            slips_on, blocked_on = ctx.at_share(0.5), ctx.at_share(0.75)
        late = horizon + timedelta(days=120)
        for day in days:
            if day < slips_on:
                reports.append(on_course(day))
                continue
            # Still moving, slowly, and no longer expected in time.
            percent = progress(slips_on) + 0.01 * (day - slips_on).days
            state = "blocked" if blocked_on is not None and day >= blocked_on else waiting
            reports.append(_milestone_report(defn.id, ministry, day, state, percent, late))
    else:
        if ctx.start < met_on <= ctx.end and met_on not in days:
            days = sorted([*days, met_on])
        if course is Course.SILENT:
            assert silent_from is not None
            days = [day for day in days if day <= silent_from]
        reports = [on_course(day) for day in days]
        if reports and met_on < ctx.start:
            # Done before the window: the report that dates it, sent with the first one.
            reports.insert(1, on_course(met_on, send_on=reports[0].send_on))
    expected = _milestone_expected(defn, course, reports, met_on, ctx.end)
    return SubjectPlan(
        defn.id, "milestone", ministry, defn.measure_id, course, expected, tuple(reports), slips_on
    )


def _milestone_expected(
    defn: MilestoneDefinition,
    course: Course,
    reports: Sequence[Report],
    met_on: date,
    end: date,
) -> Status:
    if not reports:
        return Status.NO_DATA
    last = max(r.as_of for r in reports)
    if course is not Course.SLIPPING and met_on <= last:
        return Status.ACHIEVED
    if defn.deadline < end:
        return Status.OVERDUE
    if course is Course.SLIPPING:
        return Status.OFF_TRACK if defn.deadline > end else Status.AT_RISK
    thresholds = defn.thresholds
    if (end - last).days > thresholds.reporting_cadence_days + thresholds.stale_grace_days:
        return Status.STALE
    return Status.ON_TRACK


def _plan(
    subject: Mapping[str, Any],
    ministry: str,
    course: Course,
    ctx: _Context,
    silent_from: date | None,
) -> SubjectPlan:
    defn = definition_from_catalogue(subject)
    if isinstance(defn, KpiDefinition):
        plan = _kpi_plan(subject, defn, ministry, course, ctx, silent_from)
    else:
        plan = _milestone_plan(defn, ministry, course, ctx, silent_from)
    return replace(plan, ministries=defn.ministries, unit=subject.get("unit"))


def _deadline(subject: Mapping[str, Any], ctx: _Context) -> date | None:
    """The date a subject's fate is decided by: the final deadline (None: nothing to slip)."""
    defn = definition_from_catalogue(subject)
    if isinstance(defn, MilestoneDefinition):
        return defn.deadline
    course = KpiCourse.of(defn, subject.get("unit"), ctx.plan_start, ctx.interval_days)
    return course.final_deadline


def _reporter(subject: Mapping[str, Any], default_owner: str) -> str:
    ministries = list(subject.get("ministries") or [])
    return str(ministries[0]) if ministries else default_owner


def _choose_slipping(
    candidates: Sequence[Mapping[str, Any]], ctx: _Context, share: float
) -> set[str]:
    """About `share` of the candidates of each kind, at least two of each when there are."""
    chosen: set[str] = set()
    for kind in ("kpi", "milestone"):
        ranked = sorted(
            (s for s in candidates if s.get("kind") == kind),
            key=lambda s: stable_fraction(ctx.seed + ":slip", str(s["id"])),
        )
        count = max(min(2, len(ranked)), round(share * len(ranked)))
        chosen.update(str(s["id"]) for s in ranked[:count])
    return chosen


def _choose_silent(
    subjects: Sequence[Mapping[str, Any]],
    default_owner: str,
    ctx: _Context,
    silent_from: date,
) -> str | None:
    """The ministry whose silence shows most: most subjects left stale or overdue by it,
    among those reporting at most SILENT_SHARE_MAX of the subjects (one ministry's silence
    should stand out, not take a fifth of the plan with it)."""
    by_ministry: dict[str, list[Mapping[str, Any]]] = {}
    for subject in subjects:
        ministry = _reporter(subject, default_owner)
        if ministry != default_owner:
            by_ministry.setdefault(ministry, []).append(subject)
    small = {
        m: owned
        for m, owned in by_ministry.items()
        if len(owned) <= SILENT_SHARE_MAX * len(subjects)
    }
    by_ministry = small or by_ministry
    if not by_ministry:
        return None

    def visible(ministry: str) -> tuple[int, int, str]:
        owned = by_ministry[ministry]
        shows = sum(
            _plan(s, ministry, Course.SILENT, ctx, silent_from).expected
            in (Status.STALE, Status.OVERDUE)
            for s in owned
        )
        return (shows, len(owned), ministry)

    return max(by_ministry, key=visible)


def _measure_reports(
    measures: Iterable[Mapping[str, Any]],
    plans: Mapping[str, SubjectPlan],
    ctx: _Context,
    silent_ministry: str | None,
    silent_from: date | None,
) -> list[Report]:
    """Quarterly self-assessments: at risk once one of the measure's subjects has slipped."""
    slips: dict[str, list[date]] = {}
    for plan in plans.values():
        if plan.slips_on is not None:
            slips.setdefault(plan.measure_id, []).append(plan.slips_on)
    reports: list[Report] = []
    for measure in measures:
        ministries = list(measure.get("ministries") or [])
        if not ministries:
            continue
        ministry, measure_id = str(ministries[0]), str(measure["id"])
        for day in ctx.regular_days(measure_id, MEASURE_INTERVAL_DAYS):
            if ministry == silent_ministry and silent_from is not None and day > silent_from:
                break
            slipped = any(day >= since for since in slips.get(measure_id, []))
            data = {
                "measure_id": measure_id,
                "rating": "at_risk" if slipped else "on_track",
                "as_of": day.isoformat(),
                "narrative": NOTE,
            }
            reports.append(Report(measure_id, "measure", ministry, day, day, data))
    return reports


def build_scenario(
    items: Sequence[Mapping[str, Any]],
    measures: Sequence[Mapping[str, Any]] = (),
    *,
    start: date,
    end: date,
    plan_start: date,
    default_owner: str = "digital",
    silent_ministry: str | None = None,
    seed: str = "shinchoku",
    interval_days: int = 30,
    slip_share: float = 0.25,
) -> Scenario:
    """The scenario for catalogue `items` (KPI and milestone documents as loaded, see
    shared.catalogue.loader) and `measures` over [start, end].

    `plan_start` dates the start of the plan (the catalogue's decision date). `silent_ministry`
    None picks the ministry whose silence shows most; there is no silence when the window is
    shorter than SILENCE_DAYS plus one reporting interval.
    """
    if not plan_start < start < end:
        raise ValueError("need plan_start < start < end")
    ctx = _Context(start, end, plan_start, interval_days, seed)
    subjects = [
        s
        for s in items
        if s.get("kind") in ("kpi", "milestone") and s.get("state", "active") == "active"
    ]
    silent_from = end - timedelta(days=SILENCE_DAYS)
    if silent_from < start + timedelta(days=interval_days):
        silent_ministry, silent_from_or_none = None, None
    else:
        silent_from_or_none = silent_from
        if silent_ministry is None:
            silent_ministry = _choose_silent(subjects, default_owner, ctx, silent_from)
    # Slipping is chosen among subjects with a deadline leaving time to slip in the window.
    earliest = start + timedelta(days=interval_days)
    candidates = [
        s
        for s in subjects
        if _reporter(s, default_owner) != silent_ministry
        and (deadline := _deadline(s, ctx)) is not None
        and deadline >= earliest
    ]
    slipping = _choose_slipping(candidates, ctx, slip_share)
    plans: dict[str, SubjectPlan] = {}
    for subject in subjects:
        ministry = _reporter(subject, default_owner)
        if ministry == silent_ministry:
            course = Course.SILENT
        elif subject["id"] in slipping:
            course = Course.SLIPPING
        else:
            course = Course.ON_COURSE
        plans[str(subject["id"])] = _plan(subject, ministry, course, ctx, silent_from_or_none)
    measure_reports = _measure_reports(measures, plans, ctx, silent_ministry, silent_from_or_none)
    return Scenario(
        start=start,
        end=end,
        subjects=plans,
        measure_reports=tuple(measure_reports),
        silent_ministry=silent_ministry,
        silent_from=silent_from_or_none,
    )

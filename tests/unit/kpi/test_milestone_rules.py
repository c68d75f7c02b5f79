"""Table tests for the milestone rules M1-M8, both kinds, with days late."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import pytest

from services.kpi.domain.model import (
    MilestoneDefinition,
    MilestoneKind,
    MilestoneReport,
    MilestoneThresholds,
    ReportedState,
    Status,
)
from services.kpi.domain.rules import MILESTONE_RULES, evaluate_milestone
from tests.unit.kpi.factories import M_DEADLINE, M_START, days, milestone, mstate_of, report

NS, IP, DONE, BLOCKED = (
    ReportedState.NOT_STARTED,
    ReportedState.IN_PROGRESS,
    ReportedState.DONE,
    ReportedState.BLOCKED,
)
DELIVER, START = MilestoneKind.DELIVER, MilestoneKind.START
TODAY = date(2023, 8, 15)  # 37% of the way from M_START to M_DEADLINE
SEP, OCT, DEC = date(2023, 9, 30), date(2023, 10, 31), date(2023, 12, 31)


@dataclass(frozen=True)
class Case:
    name: str
    defn: MilestoneDefinition
    reports: tuple[MilestoneReport, ...]
    today: date
    status: Status
    rule_id: str
    days_late: int | None = None


def case(
    name: str,
    reports: list[MilestoneReport],
    today: date,
    status: Status,
    rule_id: str,
    *,
    kind: MilestoneKind = DELIVER,
    days_late: int | None = None,
) -> Case:
    return Case(name, milestone(kind), tuple(reports), today, status, rule_id, days_late)


CASES = [
    # M1 no_data
    case("M1 no report", [], TODAY, Status.NO_DATA, "M1"),
    case("M1 only a future report", [report(IP, TODAY + days(1))], TODAY, Status.NO_DATA, "M1"),
    case("M1 near miss: one report", [report(IP, TODAY, 10)], TODAY, Status.ON_TRACK, "M8"),
    # M2 achieved
    case("M2 deliver done", [report(DONE, DEC, 100)], DEC, Status.ACHIEVED, "M2"),
    case(
        "M2 deliver done late",
        [report(DONE, M_DEADLINE + days(20), 100)],
        M_DEADLINE + days(30),
        Status.ACHIEVED,
        "M2",
        days_late=20,
    ),
    case(
        "M2 start kind: started", [report(IP, TODAY, 5)], TODAY, Status.ACHIEVED, "M2", kind=START
    ),
    case("M2 near miss: deliver in progress", [report(IP, DEC, 90)], DEC, Status.ON_TRACK, "M8"),
    # M3 overdue
    case(
        "M3 deliver not done",
        [report(IP, M_DEADLINE, 90)],
        M_DEADLINE + days(10),
        Status.OVERDUE,
        "M3",
        days_late=10,
    ),
    case(
        "M3 start kind not started",
        [report(NS, M_DEADLINE)],
        M_DEADLINE + days(1),
        Status.OVERDUE,
        "M3",
        kind=START,
        days_late=1,
    ),
    case(
        "M3 near miss: on the deadline",
        [report(IP, M_DEADLINE, 90)],
        M_DEADLINE,
        Status.ON_TRACK,
        "M8",
    ),
    # M4 stale (cadence 92 + grace 30)
    case("M4 old report", [report(IP, M_START, 5)], M_START + days(123), Status.STALE, "M4"),
    case("M4 near miss", [report(IP, M_START, 5)], M_START + days(122), Status.ON_TRACK, "M8"),
    # M5 blocked
    case("M5 blocked", [report(BLOCKED, TODAY, 30)], TODAY, Status.OFF_TRACK, "M5"),
    case(
        "M5 start kind blocked", [report(BLOCKED, TODAY)], TODAY, Status.OFF_TRACK, "M5", kind=START
    ),
    # M6 expected completion after the deadline
    case(
        "M6 expected late",
        [report(IP, TODAY, 30, expected=M_DEADLINE + days(1))],
        TODAY,
        Status.AT_RISK,
        "M6",
    ),
    case(
        "M6 near miss: expected on the deadline",
        [report(IP, TODAY, 30, expected=M_DEADLINE)],
        TODAY,
        Status.ON_TRACK,
        "M8",
    ),
    # M7 no progress
    case(
        "M7 percent unchanged",
        [report(IP, SEP, 40), report(IP, OCT, 40)],
        OCT,
        Status.AT_RISK,
        "M7",
    ),
    case(
        "M7 near miss: percent rose",
        [report(IP, SEP, 40), report(IP, OCT, 41)],
        OCT,
        Status.ON_TRACK,
        "M8",
    ),
    case("M7 not started at 55% of the time", [report(NS, OCT)], OCT, Status.AT_RISK, "M7"),
    case(
        "M7 near miss: not started at 37% of the time",
        [report(NS, TODAY)],
        TODAY,
        Status.ON_TRACK,
        "M8",
    ),
    case(
        "M7 start kind not started late", [report(NS, OCT)], OCT, Status.AT_RISK, "M7", kind=START
    ),
    # M8 on_track
    case("M8 progressing", [report(IP, SEP, 20), report(IP, OCT, 35)], OCT, Status.ON_TRACK, "M8"),
]


@pytest.mark.parametrize("c", CASES, ids=[c.name for c in CASES])
def test_milestone_rule_table(c: Case) -> None:
    """Each case yields its status and days late, decided by the named rule."""
    evaluation = evaluate_milestone(c.defn, mstate_of(c.defn, c.reports), c.today)
    assert (evaluation.status, evaluation.explanation.rule_id) == (c.status, c.rule_id)
    assert evaluation.days_late == c.days_late


def test_every_milestone_rule_has_a_firing_case() -> None:
    """The table covers every milestone rule."""
    assert {c.rule_id for c in CASES} == {r.id for r in MILESTONE_RULES}


def test_no_progress_needs_planned_start_for_the_time_rule() -> None:
    """Without a planned start, "nothing started" alone is not at risk."""
    defn = milestone(planned_start=None)
    evaluation = evaluate_milestone(defn, mstate_of(defn, [report(NS, OCT)]), OCT)
    assert evaluation.status is Status.ON_TRACK


def test_no_progress_time_fraction_is_a_threshold() -> None:
    """A later no-progress threshold tolerates a not-started milestone longer."""
    defn = milestone(thresholds=MilestoneThresholds(no_progress_time_fraction=0.8))
    evaluation = evaluate_milestone(defn, mstate_of(defn, [report(NS, OCT)]), OCT)
    assert evaluation.status is Status.ON_TRACK


def test_no_progress_cites_both_reports() -> None:
    """The unchanged-percent rule names the two reports that show it."""
    reports = [report(IP, SEP, 40, event_id="r1"), report(IP, OCT, 40, event_id="r2")]
    evaluation = evaluate_milestone(milestone(), mstate_of(milestone(), reports), OCT)
    assert evaluation.explanation.evidence == ("r1", "r2")
    assert evaluation.explanation.inputs["previous_percent_complete"] == 40


def test_achieved_late_dates_from_first_done_report() -> None:
    """Days late of an achievement count from the first report that said done."""
    reports = [
        report(DONE, M_DEADLINE + days(5), 100, event_id="d1"),
        report(DONE, M_DEADLINE + days(40), 100, event_id="d2"),
    ]
    evaluation = evaluate_milestone(
        milestone(), mstate_of(milestone(), reports), M_DEADLINE + days(50)
    )
    assert (evaluation.status, evaluation.days_late) == (Status.ACHIEVED, 5)


def test_milestone_evaluation_exposes_report_fields() -> None:
    """The evaluation carries the latest state, percent and expected completion."""
    r = report(IP, TODAY, 30, expected=DEC)
    evaluation = evaluate_milestone(milestone(), mstate_of(milestone(), [r]), TODAY)
    assert (
        evaluation.reported_state,
        evaluation.percent_complete,
        evaluation.expected_completion,
    ) == (
        IP,
        30,
        DEC,
    )
    assert evaluation.next_deadline == M_DEADLINE

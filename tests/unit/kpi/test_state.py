"""The incremental aggregates: bounded window, revisions, first, anchors, idempotency."""

from __future__ import annotations

from datetime import UTC, date, datetime

from services.kpi.domain.model import RelativeTarget, ReportedState, Target
from services.kpi.domain.rules import evaluate_kpi
from services.kpi.domain.state import (
    MILESTONE_WINDOW,
    KpiState,
    apply_observation,
    apply_report,
)
from tests.unit.kpi.factories import FINAL, days, kpi, milestone, mstate_of, obs, report, state_of

EARLY = datetime(2024, 1, 1, tzinfo=UTC)
LATE = datetime(2024, 2, 1, tzinfo=UTC)


def test_window_keeps_the_latest_dates_only() -> None:
    """The window holds the N most recent as_of dates, ascending, whatever the arrival order."""
    defn = kpi()
    base = date(2022, 1, 1)
    observations = [obs(i, base + days(i)) for i in range(20)]
    state = state_of(defn, reversed(observations))
    assert [o.value for o in state.window] == list(range(12, 20))
    assert len(state.window) == defn.forecast_window
    assert state.latest == observations[-1]
    assert state.first == observations[0]


def test_late_event_older_than_the_window_is_ignored_by_the_window() -> None:
    """An event older than every windowed date does not enter the window but can be first."""
    defn = kpi()
    base = date(2022, 1, 1)
    state = state_of(defn, [obs(i, base + days(i)) for i in range(1, 9)])
    old = obs(-1, base)
    after = apply_observation(state, old)
    assert after.window == state.window
    assert after.first == old


def test_a_later_arrival_wins_over_a_report_dated_in_the_far_future() -> None:
    """A report whose sender dated it 9999-12-31 is corrected by a report for the same as_of
    that arrives later (a greater offset in the KPI's partition) with the real time, in either
    fold order: the system's arrival order decides, not the sender's clock."""
    day = date(2023, 3, 31)
    forged = obs(
        1_000_000,
        day,
        "forged",
        received_at=datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC),
        arrival=10,
    )
    correction = obs(45, day, "correction", received_at=EARLY, arrival=11)
    for order in ([forged, correction], [correction, forged]):
        state = state_of(kpi(), order)
        assert state.window == (correction,)
        assert state.first == correction


def test_an_event_of_unknown_arrival_is_older_than_any_arrived_one() -> None:
    """Events stored before arrivals were recorded (-1) lose to any event with an arrival."""
    day = date(2023, 3, 31)
    legacy = obs(40, day, "legacy", received_at=LATE)
    arrived = obs(45, day, "arrived", received_at=EARLY, arrival=0)
    assert state_of(kpi(), [legacy, arrived]).window == (arrived,)
    assert state_of(kpi(), [arrived, legacy]).window == (arrived,)


def test_revision_of_same_date_latest_received_wins() -> None:
    """Two reports of unknown arrival for one as_of: the later sent counts, in either order."""
    day = date(2023, 3, 31)
    first = obs(40, day, "e1", received_at=EARLY)
    correction = obs(45, day, "e2", received_at=LATE)
    for order in ([first, correction], [correction, first]):
        state = state_of(kpi(), order)
        assert state.window == (correction,)
        assert state.first == correction


def test_same_received_at_tie_breaks_on_event_id() -> None:
    """Identical as_of and received_at: the greater event id wins, deterministically."""
    day = date(2023, 3, 31)
    a, b = obs(1, day, "a", received_at=EARLY), obs(2, day, "b", received_at=EARLY)
    assert state_of(kpi(), [a, b]) == state_of(kpi(), [b, a])
    assert state_of(kpi(), [a, b]).window == (b,)


def test_applying_an_observation_twice_is_a_no_op() -> None:
    """Re-delivering an event leaves the state unchanged."""
    o = obs(10, date(2023, 3, 31))
    once = apply_observation(KpiState.for_definition(kpi()), o)
    assert apply_observation(once, o) == once


def test_anchor_years_keep_their_fiscal_year_end_value() -> None:
    """For a base fiscal year, the latest observation within it is kept beyond the window."""
    defn = kpi(
        baseline=None,
        targets=(
            Target(
                relative=RelativeTarget(base_fiscal_year=2021, change_ratio=0.2), deadline=FINAL
            ),
        ),
    )
    in_fy = [obs(5, date(2021, 6, 30)), obs(7, date(2022, 3, 31))]
    later = [obs(i, date(2022, 4, 1) + days(i)) for i in range(20)]
    state = state_of(defn, [*later, *in_fy])
    assert state.anchor_years == frozenset({2021})
    assert state.anchors == (in_fy[1],)
    assert state.anchor_map() == {2021: in_fy[1]}
    assert in_fy[1] not in state.window


def test_non_anchor_kpi_keeps_no_anchors() -> None:
    """A KPI without relative targets stores no anchors."""
    assert state_of(kpi(), [obs(1, date(2021, 6, 30))]).anchors == ()


def test_milestone_window_and_first_dates() -> None:
    """Milestone state keeps the last reports and the first started / done dates."""
    base = date(2023, 4, 1)
    reports = [
        report(ReportedState.NOT_STARTED, base),
        report(ReportedState.IN_PROGRESS, base + days(30), 10),
        *(report(ReportedState.IN_PROGRESS, base + days(30 + i), 10 + i) for i in range(1, 6)),
        report(ReportedState.DONE, base + days(90), 100),
    ]
    state = mstate_of(milestone(), reversed(reports))
    assert len(state.window) == MILESTONE_WINDOW
    assert state.latest == reports[-1]
    assert state.first_started_as_of == base + days(30)
    assert state.first_done_as_of == base + days(90)
    assert apply_report(state, reports[3]) == state


def test_milestone_revision_latest_received_wins() -> None:
    """A corrected milestone report for the same date replaces the earlier one."""
    day = date(2023, 9, 30)
    r1 = report(ReportedState.IN_PROGRESS, day, 30, event_id="r1", received_at=EARLY)
    r2 = report(ReportedState.BLOCKED, day, 30, event_id="r2", received_at=LATE)
    assert mstate_of(milestone(), [r2, r1]).window == (r2,)
    assert mstate_of(milestone(), [r1, r2]) == mstate_of(milestone(), [r2, r1])


def test_states_round_trip_through_json() -> None:
    """What the service persists (state, evaluation) survives a JSON round trip unchanged."""
    defn = kpi(
        targets=(
            Target(
                relative=RelativeTarget(base_fiscal_year=2021, change_ratio=0.2), deadline=FINAL
            ),
        )
    )
    state = state_of(defn, [obs(5, date(2021, 6, 30)), obs(7, date(2022, 6, 30))])
    assert KpiState.model_validate_json(state.model_dump_json()) == state
    evaluation = evaluate_kpi(defn, state, date(2022, 7, 1))
    assert type(evaluation).model_validate_json(evaluation.model_dump_json()) == evaluation
    ms = mstate_of(milestone(), [report(ReportedState.DONE, date(2023, 9, 30), 100)])
    assert type(ms).model_validate_json(ms.model_dump_json()) == ms

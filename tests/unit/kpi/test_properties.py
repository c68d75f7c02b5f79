"""Hypothesis properties of the engine: monotonicity, idempotency, order independence."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from hypothesis import event, given, settings
from hypothesis import strategies as st

from services.kpi.domain.episodes import EpisodeState, track
from services.kpi.domain.history import evaluate_kpi_as_of
from services.kpi.domain.model import (
    BAD_STATUSES,
    Accumulation,
    Baseline,
    Direction,
    Evaluation,
    Explanation,
    KpiDefinition,
    KpiThresholds,
    MilestoneReport,
    Observation,
    ReportedState,
    Status,
    SubjectKind,
    Target,
    goodness,
)
from services.kpi.domain.rules import evaluate_kpi, evaluate_milestone
from services.kpi.domain.state import apply_observation, apply_report
from services.kpi.domain.trajectory import UnresolvedBase, build_trajectory, resolve_targets
from tests.unit.kpi.factories import milestone, mstate_of, state_of

EPOCH = date(2020, 1, 1)
RECEIVED = datetime(2030, 1, 1, tzinfo=UTC)
SETTINGS = settings(max_examples=150, deadline=None)

offsets = st.integers(min_value=0, max_value=6 * 365)
values = st.integers(min_value=-100, max_value=100).map(float)
# Record offsets in the KPI's partition; -1 is unknown (stored before arrivals were recorded).
arrivals = st.integers(min_value=-1, max_value=20)
# Targets lie ahead of most values in the direction of progress, so every status occurs.
ahead = st.integers(min_value=50, max_value=400).map(float)


def day(offset: int) -> date:
    return EPOCH + timedelta(days=offset)


@st.composite
def definitions(draw: st.DrawFn) -> KpiDefinition:
    """Absolute targets with the direction's comparator: "better" is then well defined."""
    direction = draw(st.sampled_from(Direction))
    baseline_offset = draw(st.integers(min_value=0, max_value=2 * 365))
    deadlines = sorted(
        draw(
            st.sets(
                st.integers(min_value=baseline_offset + 1, max_value=9 * 365),
                min_size=1,
                max_size=3,
            )
        )
    )
    at_risk = draw(st.floats(min_value=0.0, max_value=0.5))
    off_track = draw(st.floats(min_value=at_risk, max_value=1.0))
    return KpiDefinition(
        id="k",
        measure_id="m",
        direction=direction,
        accumulation=draw(st.sampled_from(Accumulation)),
        baseline=draw(
            st.none() | st.builds(Baseline, value=values, as_of=st.just(day(baseline_offset)))
        ),
        targets=tuple(
            Target(
                value=draw(ahead) * (1 if direction is Direction.INCREASE else -1), deadline=day(d)
            )
            for d in deadlines
        ),
        thresholds=KpiThresholds(
            at_risk_tolerance=at_risk,
            off_track_tolerance=off_track,
            reporting_cadence_days=draw(st.integers(min_value=30, max_value=400)),
            stale_grace_days=draw(st.integers(min_value=0, max_value=60)),
        ),
        forecast_window=draw(st.integers(min_value=2, max_value=8)),
    )


@st.composite
def observation_lists(draw: st.DrawFn, max_size: int = 12) -> list[Observation]:
    """Distinct event ids; dates, arrivals and sender times may collide to exercise revisions
    (an unknown arrival, -1, is an event stored before arrivals were recorded)."""
    n = draw(st.integers(min_value=0, max_value=max_size))
    return [
        Observation(
            event_id=f"e{i}",
            value=draw(values),
            as_of=day(draw(offsets)),
            received_at=RECEIVED + timedelta(hours=draw(st.integers(min_value=0, max_value=3))),
            arrival=draw(arrivals),
        )
        for i in range(n)
    ]


@SETTINGS
@given(
    defn=definitions(),
    history=observation_lists(),
    gap=st.integers(min_value=0, max_value=200),
    value=values,
    improvement=st.integers(min_value=1, max_value=100),
    wait=st.integers(min_value=0, max_value=300),
)
def test_better_latest_observation_never_worsens_status(
    defn: KpiDefinition,
    history: list[Observation],
    gap: int,
    value: float,
    improvement: int,
    wait: int,
) -> None:
    """A better latest value (higher for increase, lower for decrease) never worsens the status.

    Scope: the newest observation (an older one can flatten the trend, so a higher early
    value may legitimately lower the forecast), absolute targets with the direction's
    comparator ("about" is not monotone).
    """
    latest_day = max((o.as_of for o in history), default=EPOCH) + timedelta(days=gap)
    step = improvement if defn.direction is Direction.INCREASE else -improvement
    today = latest_day + timedelta(days=wait)
    statuses = []
    for v in (value, value + step):
        newest = Observation(
            event_id="newest",
            value=v,
            as_of=latest_day,
            received_at=RECEIVED + timedelta(days=1),
            arrival=1000,  # arrived after everything in the history
        )
        statuses.append(evaluate_kpi(defn, state_of(defn, [*history, newest]), today).status)
    worse, better = statuses
    event(f"{worse} -> {better}")
    assert goodness(better) >= goodness(worse)


@SETTINGS
@given(defn=definitions(), history=observation_lists(), data=st.data())
def test_state_is_order_independent_and_idempotent(
    defn: KpiDefinition, history: list[Observation], data: st.DataObject
) -> None:
    """Any arrival order of distinct events, with re-deliveries, gives the same state and status."""
    shuffled = data.draw(st.permutations(history))
    redelivered = data.draw(st.lists(st.sampled_from(history), max_size=4)) if history else []
    today = day(data.draw(offsets))
    a = state_of(defn, history)
    b = state_of(defn, [*shuffled, *redelivered])
    assert a == b
    assert evaluate_kpi(defn, a, today) == evaluate_kpi(defn, b, today)


@SETTINGS
@given(defn=definitions(), history=observation_lists(), data=st.data())
def test_applying_an_event_twice_is_a_no_op(
    defn: KpiDefinition, history: list[Observation], data: st.DataObject
) -> None:
    """Re-applying an event already applied leaves state and evaluation unchanged."""
    state = state_of(defn, history)
    extra = data.draw(observation_lists(max_size=1)) or history
    for o in extra:
        once = apply_observation(state, o)
        assert apply_observation(once, o) == once
    today = day(data.draw(offsets))
    assert evaluate_kpi(defn, state, today) == evaluate_kpi(defn, state, today)


@SETTINGS
@given(defn=definitions(), history=observation_lists(), on=offsets)
def test_as_of_equals_incremental_state(
    defn: KpiDefinition, history: list[Observation], on: int
) -> None:
    """Rebuilding for a past date equals the incremental state of the events up to it."""
    cutoff = day(on)
    kept = [o for o in history if o.as_of <= cutoff]
    assert evaluate_kpi_as_of(defn, history, cutoff) == evaluate_kpi(
        defn, state_of(defn, kept), cutoff
    )


@SETTINGS
@given(defn=definitions())
def test_trajectory_hits_each_target_at_its_deadline(defn: KpiDefinition) -> None:
    """With a baseline, the plan equals each target's value exactly on its deadline."""
    resolved = resolve_targets(defn, {})
    assert not isinstance(resolved, UnresolvedBase)
    targets = resolved[0]
    first = Observation(event_id="f", value=0.0, as_of=EPOCH, received_at=RECEIVED)
    trajectory = build_trajectory(defn, targets, None if defn.baseline else first)
    assert trajectory is not None
    for target in targets:
        if target.deadline > trajectory.start_date:
            assert trajectory.planned_at(target.deadline) == target.value


@st.composite
def report_lists(draw: st.DrawFn) -> list[MilestoneReport]:
    n = draw(st.integers(min_value=0, max_value=8))
    return [
        MilestoneReport(
            event_id=f"r{i}",
            state=draw(st.sampled_from(ReportedState)),
            percent_complete=draw(st.none() | st.integers(min_value=0, max_value=100).map(float)),
            expected_completion=draw(st.none() | offsets.map(day)),
            as_of=day(draw(st.integers(min_value=3 * 365, max_value=5 * 365))),
            received_at=RECEIVED + timedelta(hours=draw(st.integers(min_value=0, max_value=3))),
            arrival=draw(arrivals),
        )
        for i in range(n)
    ]


@SETTINGS
@given(reports=report_lists(), data=st.data())
def test_milestone_state_is_order_independent_and_idempotent(
    reports: list[MilestoneReport], data: st.DataObject
) -> None:
    """Any arrival order of milestone reports, with re-deliveries, gives the same result."""
    defn = milestone()
    shuffled = data.draw(st.permutations(reports))
    a = mstate_of(defn, reports)
    b = mstate_of(defn, shuffled)
    assert a == b
    for r in reports:
        assert apply_report(a, r) == a
    today = day(data.draw(st.integers(min_value=3 * 365, max_value=6 * 365)))
    assert evaluate_milestone(defn, a, today) == evaluate_milestone(defn, b, today)


@SETTINGS
@given(statuses=st.lists(st.sampled_from(Status), max_size=12))
def test_episodes_follow_bad_runs(statuses: list[Status]) -> None:
    """An event iff the status changes; one episode id per run of bad statuses, unique per run."""
    state = EpisodeState.initial("k")
    previous: Status | None = None
    run_ids: list[str] = []
    for i, status in enumerate(statuses):
        evaluation = Evaluation(
            subject_id="k",
            subject_kind=SubjectKind.KPI,
            status=status,
            explanation=Explanation(rule_id="K9", message=""),
            evaluated_on=EPOCH + timedelta(days=i // 3),  # several per day: same-day reopening
        )
        transition = track(state, evaluation)
        assert (transition.event is not None) == (status != previous)
        if status in BAD_STATUSES:
            assert transition.state.episode_id is not None
            if previous not in BAD_STATUSES:
                run_ids.append(transition.state.episode_id)
            assert transition.state.episode_id == run_ids[-1]
        else:
            assert transition.state.episode_id is None
        state, previous = transition.state, status
    assert len(set(run_ids)) == len(run_ids)


@SETTINGS
@given(history=observation_lists(), sender_times=st.data())
def test_the_last_arrival_wins_whatever_the_senders_clock(
    history: list[Observation], sender_times: st.DataObject
) -> None:
    """Among reports of one as_of with known arrivals, the state keeps the last to arrive, in
    any fold order and whatever CloudEvents times their senders chose."""
    defn = KpiDefinition(id="k", measure_id="m", direction=Direction.INCREASE, forecast_window=8)
    as_of = day(100)
    reports = [
        o.model_copy(
            update={
                "as_of": as_of,
                "arrival": i,
                "received_at": sender_times.draw(
                    st.datetimes(
                        min_value=datetime(2000, 1, 1),  # naive bounds, aware values
                        max_value=datetime(9999, 12, 31, 23, 59, 59),
                        timezones=st.just(UTC),
                    )
                ),
            }
        )
        for i, o in enumerate(history)
    ]
    order = sender_times.draw(st.permutations(reports))
    state = state_of(defn, order)
    if reports:
        assert state.window == (reports[-1],)

"""The per-subject state transition (domain/transition.py): state, events, today -> next state
and status change."""

from __future__ import annotations

from datetime import date, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from services.kpi.domain.model import Observation, ReportedState, Status, SubjectKind
from services.kpi.domain.transition import advance, status_event_id
from tests.unit.kpi.factories import FINAL, STAGE_1, kpi, milestone, obs, report

SETTINGS = settings(max_examples=100, deadline=None)
TODAY = date(2024, 6, 1)

observations = st.lists(
    st.builds(
        obs,
        value=st.integers(min_value=-50, max_value=150).map(float),
        as_of=st.integers(min_value=0, max_value=4 * 365).map(
            lambda n: date(2020, 4, 1) + timedelta(days=n)
        ),
        arrival=st.integers(min_value=0, max_value=1000),
    ),
    max_size=12,
)


def test_a_first_evaluation_is_a_status_change_numbered_one() -> None:
    """A subject evaluated for the first time gets a state and a change from no status."""
    step = advance(kpi(), None, [], TODAY)
    assert step.state is not None
    assert step.change is not None
    assert step.change.seq == step.state.seq == 1
    assert step.change.change.previous_status is None
    assert step.change.change.new_status is step.state.evaluation.status
    assert step.change.event_id == status_event_id("kpi-1", 1) == "status:kpi-1:1"
    assert step.state.kind is SubjectKind.KPI
    assert step.state.ministries == ("digital",)


def test_nothing_new_on_the_same_day_stores_nothing() -> None:
    """Advancing a state with no events on the day it was evaluated yields no new state."""
    first = advance(kpi(), None, [obs(80.0, date(2024, 5, 1))], TODAY).state
    assert advance(kpi(), first, [], TODAY).state is None


def test_a_status_change_numbers_on_from_the_previous_one() -> None:
    """A later change carries the next sequence number, so its event id is new."""
    definition = kpi()
    first = advance(definition, None, [obs(1.0, STAGE_1 - timedelta(days=400))], TODAY).state
    assert first is not None
    later = advance(definition, first, [obs(100.0, TODAY)], TODAY)
    assert later.state is not None
    assert later.change is not None
    assert later.state.evaluation.status is Status.ACHIEVED
    assert later.change.change.previous_status is first.evaluation.status
    assert later.change.seq == first.seq + 1


def test_an_owner_change_alone_stores_a_new_state_without_a_status_change() -> None:
    """The state says who owns the subject: new owners alone make a new state, not a change."""
    first = advance(kpi(), None, [], TODAY).state
    assert first is not None
    moved = kpi().model_copy(update={"ministries": ("mic",)})
    step = advance(moved, first, [], TODAY)
    assert step.state is not None
    assert step.change is None
    assert step.state.ministries == ("mic",)
    assert step.state.seq == first.seq


def test_a_passing_deadline_changes_a_milestone_without_events() -> None:
    """Time alone moves a status: the same state advanced on a later day may change."""
    definition = milestone()
    start = advance(
        definition,
        None,
        [report(ReportedState.IN_PROGRESS, date(2024, 3, 1), 50.0)],
        date(2024, 3, 1),
    ).state
    assert start is not None
    late = advance(definition, start, [], FINAL)
    assert late.state is not None
    assert late.change is not None
    assert late.state.kind is SubjectKind.MILESTONE
    assert late.state.evaluation.status is not start.evaluation.status


@SETTINGS
@given(events=observations)
def test_advancing_is_idempotent(events: list[Observation]) -> None:
    """The same events applied again on the same day change nothing."""
    state = advance(kpi(), None, events, TODAY).state
    assert state is not None
    assert advance(kpi(), state, events, TODAY) == advance(kpi(), state, [], TODAY)
    assert advance(kpi(), state, events, TODAY).state is None


@SETTINGS
@given(events=observations, split=st.integers(min_value=0, max_value=12))
def test_batching_does_not_change_the_state(events: list[Observation], split: int) -> None:
    """Events folded in one batch or two give the same aggregate and evaluation."""
    whole = advance(kpi(), None, events, TODAY).state
    first = advance(kpi(), None, events[:split], TODAY).state
    assert whole is not None
    assert first is not None
    second = advance(kpi(), first, events[split:], TODAY).state or first
    assert second.aggregate == whole.aggregate
    assert second.evaluation == whole.evaluation
    assert second.episode.status == whole.episode.status

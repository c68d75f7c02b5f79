"""status_changed emission and episode ids."""

from __future__ import annotations

from datetime import date

from services.kpi.domain.episodes import EpisodeState, episode_id_for, track
from services.kpi.domain.model import Evaluation, Explanation, Status, SubjectKind

D1, D2, D3, D4 = date(2024, 1, 1), date(2024, 2, 1), date(2024, 3, 1), date(2024, 4, 1)


def ev(status: Status, on: date) -> Evaluation:
    return Evaluation(
        subject_id="kpi-1",
        subject_kind=SubjectKind.KPI,
        status=status,
        explanation=Explanation(rule_id="K9", message="m"),
        evaluated_on=on,
    )


def run(*steps: tuple[Status, date]) -> list[tuple[Status | None, Status, str | None] | None]:
    state = EpisodeState.initial("kpi-1")
    out: list[tuple[Status | None, Status, str | None] | None] = []
    for status, on in steps:
        transition = track(state, ev(status, on))
        state = transition.state
        e = transition.event
        out.append(None if e is None else (e.previous_status, e.new_status, e.episode_id))
    return out


def test_first_evaluation_is_a_change() -> None:
    """The first evaluation emits a change from None."""
    assert run((Status.ON_TRACK, D1)) == [(None, Status.ON_TRACK, None)]


def test_no_event_without_a_change() -> None:
    """Re-evaluating to the same status emits nothing."""
    assert run((Status.ON_TRACK, D1), (Status.ON_TRACK, D2))[1] is None


def test_episode_spans_consecutive_bad_statuses() -> None:
    """An episode opens on entering a bad status, stays through escalation, closes on recovery."""
    events = run(
        (Status.ON_TRACK, D1),
        (Status.AT_RISK, D2),
        (Status.AT_RISK, D2),
        (Status.OFF_TRACK, D3),
        (Status.ON_TRACK, D4),
    )
    assert events == [
        (None, Status.ON_TRACK, None),
        (Status.ON_TRACK, Status.AT_RISK, "kpi-1:2024-02-01"),
        None,
        (Status.AT_RISK, Status.OFF_TRACK, "kpi-1:2024-02-01"),
        (Status.OFF_TRACK, Status.ON_TRACK, "kpi-1:2024-02-01"),
    ]


def test_stale_is_bad_and_neutral_statuses_are_not() -> None:
    """stale opens an episode; no_data / target_pending carry none."""
    events = run((Status.NO_DATA, D1), (Status.TARGET_PENDING, D2), (Status.STALE, D3))
    assert [e[2] if e else None for e in events] == [None, None, "kpi-1:2024-03-01"]


def test_new_episode_after_recovery_and_same_day_ids_differ() -> None:
    """A second bad run gets a new id, even when it opens on the same day."""
    events = run(
        (Status.AT_RISK, D1),
        (Status.ON_TRACK, D1),
        (Status.OFF_TRACK, D1),
        (Status.ON_TRACK, D2),
        (Status.OVERDUE, D3),
    )
    ids = [e[2] if e else None for e in events]
    assert ids == [
        "kpi-1:2024-01-01",
        "kpi-1:2024-01-01",
        "kpi-1:2024-01-01#2",
        "kpi-1:2024-01-01#2",
        "kpi-1:2024-03-01",
    ]


def test_episode_id_numbering() -> None:
    """Same-day ids count up; an unrelated previous id does not affect the base."""
    assert episode_id_for("k", D1, "k:2024-01-01#2") == "k:2024-01-01#3"
    assert episode_id_for("k", D1, "k:2023-12-31") == "k:2024-01-01"
    assert episode_id_for("k", D1, None) == "k:2024-01-01"


def test_event_carries_explanation_and_date() -> None:
    """The status_changed payload carries the evaluation's explanation and date."""
    transition = track(EpisodeState.initial("kpi-1"), ev(Status.OFF_TRACK, D2))
    assert transition.event is not None
    assert transition.event.explanation.rule_id == "K9"
    assert transition.event.evaluated_on == D2
    assert transition.state.since == D2


def test_track_is_idempotent() -> None:
    """Applying the same evaluation twice equals applying it once, with no second event."""
    first = track(EpisodeState.initial("kpi-1"), ev(Status.AT_RISK, D1))
    again = track(first.state, ev(Status.AT_RISK, D1))
    assert (again.state, again.event) == (first.state, None)

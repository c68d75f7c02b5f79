"""Grouping windows: which waiting notifications become one delivery, and when."""

from __future__ import annotations

from datetime import datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from services.alerts.domain.grouping import Waiting, next_ready_at, ready_groups
from tests.unit.alerts.factories import T0

W = timedelta(seconds=30)


def at(seconds: float) -> Waiting:
    return Waiting(f"n{seconds}", "s", T0 + timedelta(seconds=seconds))


def test_two_changes_within_the_window_become_one_group_once_it_closes() -> None:
    """Notifications 0 s and 10 s into a 30 s window wait until 30 s, then go together."""
    waiting = [at(0), at(10)]
    assert ready_groups(waiting, now=T0 + timedelta(seconds=29), window=W) == []
    (group,) = ready_groups(waiting, now=T0 + timedelta(seconds=30), window=W)
    assert group.ids == ("n0", "n10")
    assert group.opened_at == T0


def test_a_late_notification_opens_the_next_window() -> None:
    """Arriving after the first window, a notification waits for a window of its own."""
    waiting = [at(0), at(31)]
    groups = ready_groups(waiting, now=T0 + timedelta(seconds=40), window=W)
    assert [g.ids for g in groups] == [("n0",)]
    groups = ready_groups(waiting, now=T0 + timedelta(seconds=61), window=W)
    assert [g.ids for g in groups] == [("n0",), ("n31",)]


def test_window_zero_sends_each_notification_alone_and_at_once() -> None:
    """A window of 0 means send immediately: one group per notification, all ready."""
    waiting = [at(0), at(0.0), Waiting("x", "s", T0 + timedelta(hours=1))]
    groups = ready_groups(waiting, now=T0, window=timedelta(0))
    assert sorted(g.ids for g in groups) == [("n0",), ("n0.0",), ("x",)]


def test_subscriptions_are_grouped_separately() -> None:
    """Each subscription has its own windows."""
    waiting = [Waiting("a1", "a", T0), Waiting("b1", "b", T0), Waiting("a2", "a", T0)]
    groups = ready_groups(waiting, now=T0 + W, window=W)
    assert {(g.subscription_id, g.ids) for g in groups} == {("a", ("a1", "a2")), ("b", ("b1",))}


def test_an_immediate_member_makes_its_group_ready() -> None:
    """A notification released from a silence does not wait for another window."""
    waiting = [at(0), Waiting("r", "s", T0 + timedelta(seconds=1), immediate=True)]
    (group,) = ready_groups(waiting, now=T0 + timedelta(seconds=2), window=W)
    assert group.ids == ("n0", "r")


def test_a_full_group_is_ready_and_the_rest_waits() -> None:
    """No delivery carries more than max_size changes; a full one goes at once."""
    waiting = [at(i) for i in range(5)]
    groups = ready_groups(waiting, now=T0 + timedelta(seconds=5), window=W, max_size=2)
    assert [g.ids for g in groups] == [("n0", "n1"), ("n2", "n3")]


def test_next_ready_at() -> None:
    """The batcher knows when the earliest window closes."""
    assert next_ready_at([], window=W) is None
    assert next_ready_at([at(5), at(0)], window=W) == T0 + W
    assert next_ready_at([at(0)], window=timedelta(0)) == T0


waiting_lists = st.lists(
    st.builds(
        Waiting,
        id=st.uuids().map(str),
        subscription_id=st.sampled_from(["a", "b", "c"]),
        arrived_at=st.integers(0, 600).map(lambda s: T0 + timedelta(seconds=s)),
        immediate=st.booleans(),
    ),
    max_size=30,
    unique_by=lambda w: w.id,
)
windows = st.integers(0, 120).map(lambda s: timedelta(seconds=s))
moments = st.integers(-10, 900).map(lambda s: T0 + timedelta(seconds=s))


@given(waiting=waiting_lists, window=windows, now=moments, max_size=st.integers(1, 10))
def test_groups_partition_what_they_take(
    waiting: list[Waiting], window: timedelta, now: object, max_size: int
) -> None:
    """Every notification is in at most one group, of its own subscription, within one
    window of the group's opening, and no group exceeds the maximum size."""
    groups = ready_groups(waiting, now=now, window=window, max_size=max_size)  # type: ignore[arg-type]
    by_id = {w.id: w for w in waiting}
    taken = [i for g in groups for i in g.ids]
    assert len(taken) == len(set(taken))
    for group in groups:
        assert 1 <= len(group.ids) <= max_size
        for i in group.ids:
            assert by_id[i].subscription_id == group.subscription_id
            assert group.opened_at <= by_id[i].arrived_at <= group.opened_at + window


@given(waiting=waiting_lists, window=windows, now=moments)
def test_ready_stays_ready(waiting: list[Waiting], window: timedelta, now: datetime) -> None:
    """A group ready now is still ready, with the same members, at any later time."""
    earlier = ready_groups(waiting, now=now, window=window)
    later = ready_groups(waiting, now=now + timedelta(seconds=45), window=window)
    assert set(earlier) <= set(later)


@given(waiting=waiting_lists, window=windows)
def test_everything_is_sent_once_the_last_window_closes(
    waiting: list[Waiting], window: timedelta
) -> None:
    """Nothing waits forever: after the last arrival plus a window, every notification is in a
    group."""
    if not waiting:
        return
    now = max(w.arrived_at for w in waiting) + window
    groups = ready_groups(waiting, now=now, window=window)
    assert sorted(i for g in groups for i in g.ids) == sorted(w.id for w in waiting)


@given(waiting=waiting_lists, window=windows)
def test_next_ready_at_is_when_the_first_group_becomes_ready(
    waiting: list[Waiting], window: timedelta
) -> None:
    """At next_ready_at some group is ready; a moment before, none is (unless a released
    notification made its group ready regardless of time)."""
    moment = next_ready_at(waiting, window=window)
    if moment is None:
        assert waiting == []
        return
    assert ready_groups(waiting, now=moment, window=window)
    if window > timedelta(0) and not any(w.immediate for w in waiting):
        assert not ready_groups(waiting, now=moment - timedelta(microseconds=1), window=window)


@given(waiting=waiting_lists, now=moments)
def test_window_zero_is_immediate(waiting: list[Waiting], now: object) -> None:
    """With no window, every notification is its own group, ready whatever the time."""
    groups = ready_groups(waiting, now=now, window=timedelta(0))  # type: ignore[arg-type]
    assert sorted(g.ids for g in groups) == sorted((w.id,) for w in waiting)

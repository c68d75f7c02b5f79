"""Reminder interval, endpoint disabling and the retry schedule."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.alerts.domain.endpoint_health import after_attempt
from services.alerts.domain.notifications import NotificationKind
from services.alerts.domain.reminders import (
    first_reminder_at,
    following_reminder_at,
    reminder_kind,
)
from services.alerts.domain.retry import DEFAULT_SCHEDULE_S, MAX_RETRY_AFTER_S, next_attempt_at
from shared.events.contracts import Status
from tests.unit.alerts.factories import T0

WEEK = timedelta(days=7)
K = NotificationKind


@pytest.mark.parametrize("kind", [K.SLIPPED, K.OVERDUE, K.STALE])
def test_bad_kinds_remind_after_the_interval(kind: K) -> None:
    """A KPI that stays in a bad status is mentioned again after the interval, not before."""
    assert first_reminder_at(kind, T0, WEEK) == T0 + WEEK


@pytest.mark.parametrize("kind", [K.RECOVERED, K.DIVERGENCE])
def test_other_kinds_never_remind(kind: K) -> None:
    """Recoveries and divergences are one-off."""
    assert first_reminder_at(kind, T0, WEEK) is None


def test_interval_zero_turns_reminders_off() -> None:
    """A zero interval disables reminders altogether."""
    assert first_reminder_at(K.SLIPPED, T0, timedelta(0)) is None


@given(late=st.integers(0, 100 * 24 * 3600), days=st.integers(1, 30))
def test_following_reminder_is_in_the_future_and_on_the_cadence(late: int, days: int) -> None:
    """After a (possibly late) reminder the next one is later than now, within one interval,
    and a whole number of intervals after the one that was due."""
    interval = timedelta(days=days)
    due = T0
    now = T0 + timedelta(seconds=late)
    following = following_reminder_at(due, now, interval)
    assert now < following <= now + interval
    assert (following - due) % interval == timedelta(0)


def test_success_ends_a_failing_period() -> None:
    """Any 2xx clears failing_since and never disables."""
    verdict = after_attempt(
        failing_since=T0, succeeded=True, status_code=200, at=T0 + WEEK, disable_after=WEEK
    )
    assert verdict.failing_since is None
    assert not verdict.disable


def test_gone_disables_at_once() -> None:
    """410 Gone disables the endpoint on the first such answer."""
    verdict = after_attempt(
        failing_since=None, succeeded=False, status_code=410, at=T0, disable_after=WEEK
    )
    assert verdict.disable
    assert verdict.reason is not None
    assert "410" in verdict.reason


@given(
    failing_for=st.integers(0, 10 * 24 * 3600),
    limit=st.integers(1, 6 * 24 * 3600),
    code=st.sampled_from([None, 400, 404, 429, 500, 502, 503]),
)
def test_failing_endpoint_is_disabled_exactly_after_the_period(
    failing_for: int, limit: int, code: int | None
) -> None:
    """An endpoint is disabled when it has failed every attempt for the configured period."""
    at = T0 + timedelta(seconds=failing_for)
    verdict = after_attempt(
        failing_since=T0,
        succeeded=False,
        status_code=code,
        at=at,
        disable_after=timedelta(seconds=limit),
    )
    assert verdict.failing_since == T0
    assert verdict.disable is (failing_for >= limit)


def test_first_failure_starts_the_period() -> None:
    """The first failure marks the start of the failing period and does not disable."""
    verdict = after_attempt(
        failing_since=None, succeeded=False, status_code=500, at=T0, disable_after=WEEK
    )
    assert verdict.failing_since == T0
    assert not verdict.disable


def test_default_schedule_is_the_issue_schedule() -> None:
    """Immediately, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h."""
    assert DEFAULT_SCHEDULE_S == (0, 5, 300, 1800, 7200, 18000, 36000, 36000)


def test_schedule_without_jitter_and_exhaustion() -> None:
    """The n-th retry waits schedule[n]; after the last entry there is none."""
    schedule = DEFAULT_SCHEDULE_S
    for attempt in range(1, len(schedule)):
        when = next_attempt_at(attempt=attempt, now=T0, schedule_s=schedule, jitter=0)
        assert when == T0 + timedelta(seconds=schedule[attempt])
    assert next_attempt_at(attempt=len(schedule), now=T0, schedule_s=schedule) is None
    with pytest.raises(ValueError, match="attempt"):
        next_attempt_at(attempt=0, now=T0, schedule_s=schedule)


@given(
    attempt=st.integers(1, len(DEFAULT_SCHEDULE_S) - 1),
    seed=st.integers(0, 2**32),
    retry_after=st.one_of(st.none(), st.floats(0, 10 * MAX_RETRY_AFTER_S)),
)
def test_jitter_and_retry_after_bounds(attempt: int, seed: int, retry_after: float | None) -> None:
    """Jitter stays within ±10 %; Retry-After only ever delays, up to its cap."""
    when = next_attempt_at(
        attempt=attempt,
        now=T0,
        schedule_s=DEFAULT_SCHEDULE_S,
        retry_after_s=retry_after,
        rng=random.Random(seed),
    )
    assert when is not None
    delay = (when - T0).total_seconds()
    base = DEFAULT_SCHEDULE_S[attempt]
    floor = base * 0.9
    if retry_after is not None:
        floor = max(floor, min(retry_after, MAX_RETRY_AFTER_S))
    assert delay >= floor - 1e-6
    assert delay <= max(base * 1.1, min(retry_after or 0, MAX_RETRY_AFTER_S)) + 1e-6


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (Status.OVERDUE, K.OVERDUE),
        (Status.STALE, K.STALE),
        (Status.OFF_TRACK, K.SLIPPED),
        (Status.AT_RISK, K.SLIPPED),
        (Status.ON_TRACK, None),
        (Status.ACHIEVED, None),
        (Status.NO_DATA, None),
        (Status.TARGET_PENDING, None),
    ],
)
def test_a_reminder_has_the_kind_of_the_current_status(status: Status, kind: K | None) -> None:
    """A reminder reports the KPI's current status with that status's kind; none when good."""
    assert reminder_kind(status) is kind

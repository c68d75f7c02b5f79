"""Silences: time-bounded mutes, Japan-time quiet hours, and when a muted notification goes."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.alerts.domain.silences import (
    HORIZON,
    JAPAN,
    QuietHours,
    Silence,
    SilenceScope,
    Target,
    active_until,
    is_active,
    muted_until,
    muting,
    scope_matches,
    still_in_force,
)
from tests.unit.alerts.factories import T0

TARGET = Target(subscription_id="s", kpi_id="kpi.a", measure_id="m.a", ministries=["mic", "cao"])


def jst(year: int, month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=JAPAN)


def bounded(start: datetime, end: datetime, **scope: object) -> Silence:
    return Silence(id="x", scope=SilenceScope.model_validate(scope), starts_at=start, ends_at=end)


@pytest.mark.parametrize(
    ("scope", "expected"),
    [
        (SilenceScope(), True),
        (SilenceScope(subscription_id="s"), True),
        (SilenceScope(subscription_id="t"), False),
        (SilenceScope(ministries=["mic"]), True),
        (SilenceScope(ministries=["mhlw"]), False),
        (SilenceScope(measures=["m.a"]), True),
        (SilenceScope(measures=["m.b"]), False),
        (SilenceScope(kpis=["kpi.a", "kpi.b"]), True),
        (SilenceScope(kpis=["kpi.b"]), False),
        (SilenceScope(ministries=["cao"], kpis=["kpi.b"]), False),
    ],
)
def test_scope_matching(scope: SilenceScope, expected: bool) -> None:
    """A silence mutes by subscription, ministry, measure or KPI (named dimensions ANDed)."""
    assert scope_matches(scope, TARGET) is expected


def test_time_bounded_silence() -> None:
    """Active from starts_at (inclusive) to ends_at (exclusive), and ends at ends_at."""
    silence = bounded(T0, T0 + timedelta(hours=2))
    assert not is_active(silence, T0 - timedelta(seconds=1))
    assert active_until(silence, T0) == T0 + timedelta(hours=2)
    assert not is_active(silence, T0 + timedelta(hours=2))
    assert still_in_force(silence, T0 + timedelta(hours=1))
    assert not still_in_force(silence, T0 + timedelta(hours=2))


def test_a_silence_needs_an_end_or_quiet_hours() -> None:
    """Open-ended mutes are refused; quiet hours need a start different from the end."""
    with pytest.raises(ValueError, match="ends_at"):
        Silence(id="x", starts_at=T0)
    with pytest.raises(ValueError, match="after"):
        bounded(T0, T0)
    with pytest.raises(ValueError, match="different"):
        QuietHours(start=time(22), end=time(22))
    with pytest.raises(ValueError, match="weekdays"):
        QuietHours(start=time(22), end=time(7), weekdays=[7])


NIGHT = Silence(id="q", quiet_hours=QuietHours(start=time(22), end=time(7)))


@pytest.mark.parametrize(
    ("moment", "until"),
    [
        (jst(2026, 4, 1, 21, 59), None),
        (jst(2026, 4, 1, 22, 0), jst(2026, 4, 2, 7, 0)),
        (jst(2026, 4, 2, 3, 0), jst(2026, 4, 2, 7, 0)),
        (jst(2026, 4, 2, 6, 59), jst(2026, 4, 2, 7, 0)),
        (jst(2026, 4, 2, 7, 0), None),
        (jst(2026, 4, 2, 12, 0), None),
    ],
)
def test_quiet_hours_over_midnight_in_japan_time(moment: datetime, until: datetime | None) -> None:
    """22:00-07:00 quiet hours are read in Asia/Tokyo, whatever zone the instant is given in."""
    assert active_until(NIGHT, moment.astimezone(UTC)) == until


def test_quiet_hours_on_chosen_weekdays() -> None:
    """Weekday quiet hours start only on the days listed (Japan time): Friday night's period
    runs into Saturday, Saturday night has none."""
    friday_nights = Silence(
        id="q", quiet_hours=QuietHours(start=time(22), end=time(7), weekdays=[4])
    )
    # 2026-04-03 is a Friday.
    assert is_active(friday_nights, jst(2026, 4, 3, 23))
    assert is_active(friday_nights, jst(2026, 4, 4, 6))
    assert not is_active(friday_nights, jst(2026, 4, 4, 23))
    assert not is_active(friday_nights, jst(2026, 4, 2, 23))


def test_daytime_quiet_hours() -> None:
    """A period that does not cross midnight (12:00-13:00 lunch)."""
    lunch = Silence(id="q", quiet_hours=QuietHours(start=time(12), end=time(13)))
    assert active_until(lunch, jst(2026, 4, 1, 12, 30)) == jst(2026, 4, 1, 13)
    assert not is_active(lunch, jst(2026, 4, 1, 13, 0))
    assert not is_active(lunch, jst(2026, 4, 1, 11, 59))


def test_quiet_hours_bounded_by_ends_at() -> None:
    """Quiet hours may themselves be bounded: they end at ends_at if that comes first."""
    ends = jst(2026, 4, 2, 1, 0)
    silence = Silence(id="q", quiet_hours=QuietHours(start=time(22), end=time(7)), ends_at=ends)
    assert active_until(silence, jst(2026, 4, 1, 23)) == ends
    assert not is_active(silence, jst(2026, 4, 2, 2))


def test_muted_until_follows_silences_that_take_over() -> None:
    """Overlapping and back-to-back silences: the mute ends when the last of them does."""
    first = bounded(T0, T0 + timedelta(hours=1), kpis=["kpi.a"])
    second = bounded(T0 + timedelta(minutes=30), T0 + timedelta(hours=3), ministries=["mic"])
    unrelated = bounded(T0, T0 + timedelta(hours=9), kpis=["kpi.z"])
    silences = [first, second, unrelated]
    assert muted_until(silences, TARGET, T0) == T0 + timedelta(hours=3)
    assert [s.id for s in muting(silences, TARGET, T0)] == ["x"]
    assert muted_until(silences, TARGET, T0 + timedelta(hours=3)) is None
    assert muted_until([unrelated], TARGET, T0) is None


def test_muted_until_chains_a_mute_into_quiet_hours() -> None:
    """A mute ending at 23:00 JST inside 22:00-07:00 quiet hours holds until 07:00."""
    mute = bounded(jst(2026, 4, 1, 20), jst(2026, 4, 1, 23))
    assert muted_until([mute, NIGHT], TARGET, jst(2026, 4, 1, 21)) == jst(2026, 4, 2, 7)


moments = st.integers(0, 14 * 24 * 60).map(lambda m: T0 + timedelta(minutes=m))
clock_times = st.integers(0, 24 * 60 - 1).map(lambda m: time(m // 60, m % 60))


@given(
    start=clock_times, end=clock_times, moment=moments, days=st.sets(st.integers(0, 6), min_size=1)
)
def test_quiet_hours_agree_with_the_wall_clock(
    start: time, end: time, moment: datetime, days: set[int]
) -> None:
    """Quiet hours are active exactly when the Japan wall clock is inside the period that
    started on a listed day."""
    if start == end:
        return
    silence = Silence(id="q", quiet_hours=QuietHours(start=start, end=end, weekdays=sorted(days)))
    local = moment.astimezone(JAPAN)
    now = local.time()
    if start < end:
        expected = start <= now < end and local.weekday() in days
    else:
        expected = (now >= start and local.weekday() in days) or (
            now < end and (local.weekday() - 1) % 7 in days
        )
    assert is_active(silence, moment) is expected
    until = active_until(silence, moment)
    if until is not None:
        assert until > moment
        assert until.astimezone(JAPAN).time() == end


silence_lists = st.lists(
    st.one_of(
        st.builds(
            lambda a, d, k: bounded(
                T0 + timedelta(minutes=a), T0 + timedelta(minutes=a + d), kpis=k
            ),
            st.integers(0, 3000),
            st.integers(1, 3000),
            st.sampled_from([[], ["kpi.a"], ["kpi.z"]]),
        ),
        st.tuples(clock_times, clock_times)
        .filter(lambda se: se[0] != se[1])
        .map(lambda se: Silence(id="q", quiet_hours=QuietHours(start=se[0], end=se[1]))),
    ),
    max_size=4,
)


@given(silences=silence_lists, moment=moments)
def test_muted_until_is_the_end_of_the_mute(silences: list[Silence], moment: datetime) -> None:
    """muted_until is None exactly when nothing mutes the target; otherwise the target is muted
    just before the result and free at it (unless the mute outlasts the look-ahead horizon)."""
    until = muted_until(silences, TARGET, moment)
    assert (until is None) == (muting(silences, TARGET, moment) == [])
    if until is None:
        return
    assert until > moment
    assert muting(silences, TARGET, until - timedelta(microseconds=1))
    if muting(silences, TARGET, until):
        assert until - moment >= HORIZON

"""The demo's compressed clock: the feed and the kpi service read the same settings and the same
clock function, which catches up with real time and never passes it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from demo.simulate import FeedClock
from services.kpi.settings import KpiSettings
from shared.clock import offset_clock


def test_the_kpi_settings_for_the_feed_clock_describe_the_same_clock() -> None:
    """The environment the demo gives the kpi service parses into the feed's clock again."""
    clock = FeedClock(start=datetime(2026, 1, 1, tzinfo=UTC), days=200, speed=4.0)
    settings = KpiSettings.model_validate(
        {k.removeprefix("SHINCHOKU_KPI_").lower(): v for k, v in clock.kpi_environment().items()}
    )
    assert settings.clock_offset_days == -200
    assert settings.clock_rate == 4.0 * 86_400
    assert settings.clock_start == clock.start
    assert FeedClock.from_environment(clock.kpi_environment()) == clock


def test_the_clock_starts_behind_runs_fast_and_stops_at_real_time() -> None:
    """`days` behind at its start, `rate` times faster after, never ahead of real time."""
    now = datetime.now(UTC)
    just_started = offset_clock(-100, rate=86_400.0, start=now)()
    assert now - timedelta(days=100) <= just_started <= now - timedelta(days=99)
    long_ago = offset_clock(-100, rate=86_400.0, start=now - timedelta(hours=1))()
    assert abs((long_ago - datetime.now(UTC)).total_seconds()) < 5
    assert long_ago <= datetime.now(UTC)


def test_the_feed_window_ends_today_and_spans_its_days() -> None:
    """The scenario window is [start - days, start] in simulated dates."""
    clock = FeedClock(start=datetime(2026, 11, 26, 9, tzinfo=UTC), days=365, speed=3.0)
    assert clock.last_day.isoformat() == "2026-11-26"
    assert (clock.last_day - clock.first_day).days == 365

"""The one clock type every service is given, and the real and shifted clocks that fill it.

Services never call ``datetime.now`` in their service layer: they are handed a ``Clock`` by their
composition root, so tests, replays and the demo can move time through the same code.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    """The real clock, timezone-aware UTC."""
    return datetime.now(UTC)


def offset_clock(days: float, *, rate: float = 1.0, start: datetime | None = None) -> Clock:
    """A clock running `days` ahead of the real one: for simulations and tests that move time
    (deadlines passing, reports going stale) through a service running as a process.

    With `rate` > 1 it also runs faster, from `start` (a real instant; now when None): service
    time is start + days + (real - start) x rate. A negative `days` makes it a catch-up clock
    (`make demo`): months behind at `start`, it never passes real time, so once caught up it
    keeps to it and nothing it dates is in the future.
    """
    offset = timedelta(days=days)
    if rate == 1.0:
        return lambda: utc_now() + offset
    anchor = start or utc_now()

    def now() -> datetime:
        real = utc_now()
        simulated = anchor + offset + (real - anchor) * rate
        return min(simulated, real) if days < 0 else simulated

    return now

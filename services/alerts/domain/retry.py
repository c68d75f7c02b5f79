"""When to try a failed delivery again. Pure."""

from __future__ import annotations

import random
from collections.abc import Sequence
from datetime import datetime, timedelta

# Immediately, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h (Svix's schedule); a setting in practice.
DEFAULT_SCHEDULE_S: tuple[float, ...] = (0, 5, 300, 1800, 7200, 18000, 36000, 36000)


def next_attempt_at(
    *,
    attempt: int,
    now: datetime,
    schedule_s: Sequence[float],
    retry_after_s: float | None = None,
    jitter: float = 0.1,
    rng: random.Random | None = None,
) -> datetime | None:
    """The time of attempt number `attempt` (1-based: attempt 1 is the first retry), or None
    when the schedule is exhausted. `Retry-After` from the receiver pushes it later, never
    earlier."""
    if attempt >= len(schedule_s):
        return None
    delay = schedule_s[attempt]
    if jitter and delay:
        delay *= 1 + (rng or random).uniform(-jitter, jitter)
    if retry_after_s is not None:
        delay = max(delay, retry_after_s)
    return now + timedelta(seconds=delay)

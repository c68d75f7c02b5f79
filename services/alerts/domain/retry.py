"""When to try a failed delivery again. Pure."""

from __future__ import annotations

import random
from collections.abc import Sequence
from datetime import datetime, timedelta

# Immediately, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h; a setting in practice (tests compress it).
DEFAULT_SCHEDULE_S: tuple[float, ...] = (0, 5, 300, 1800, 7200, 18000, 36000, 36000)
# A receiver's Retry-After is honoured up to this long.
MAX_RETRY_AFTER_S = 86_400.0


def next_attempt_at(
    *,
    attempt: int,
    now: datetime,
    schedule_s: Sequence[float],
    retry_after_s: float | None = None,
    jitter: float = 0.1,
    rng: random.Random | None = None,
    max_retry_after_s: float = MAX_RETRY_AFTER_S,
) -> datetime | None:
    """The time of the next try after `attempt` tries have failed (attempt 1 is the first
    try, made "immediately" per `schedule_s[0]`), or None when the schedule is exhausted.

    The delay is `schedule_s[attempt]`, varied by ±`jitter` (a fraction). `Retry-After` from the
    receiver pushes the attempt later, never earlier, and never beyond `max_retry_after_s`.
    """
    if attempt < 1:
        raise ValueError("attempt counts tries already made, from 1")
    if attempt >= len(schedule_s):
        return None
    delay = float(schedule_s[attempt])
    if jitter and delay:
        delay *= 1 + (rng or random).uniform(-jitter, jitter)
    if retry_after_s is not None:
        delay = max(delay, min(retry_after_s, max_retry_after_s))
    return now + timedelta(seconds=max(delay, 0.0))

"""Admission per API key: one token bucket per key (domain/rate_limit.py)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from services.ingest.domain.rate_limit import TokenBucket


@dataclass
class RateLimiter:
    """One token bucket per API key, in this process (each instance admits its own share)."""

    events_per_s: float
    burst: int
    monotonic: Callable[[], float] = time.monotonic
    _buckets: dict[str, TokenBucket] = field(default_factory=dict)

    def admit(self, key_id: str, cost: int) -> float:
        """0 when admitted (tokens spent); else the seconds to wait before retrying."""
        now = self.monotonic()
        bucket = self._buckets.get(key_id) or TokenBucket.full(self.events_per_s, self.burst, now)
        bucket, wait = bucket.take(cost, now)
        self._buckets[key_id] = bucket
        return wait

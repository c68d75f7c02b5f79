"""Token-bucket rate limiting, as pure values: the caller keeps the buckets and passes the time.

A bucket holds at most ``burst`` tokens and refills at ``rate`` tokens per second. Taking ``cost``
tokens either succeeds (the new bucket is returned, wait 0) or fails without changing anything and
says how long until ``cost`` tokens will be there: the ``Retry-After`` of a 429.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class TokenBucket:
    rate: float
    burst: float
    tokens: float
    updated: float

    @classmethod
    def full(cls, rate: float, burst: float, now: float) -> TokenBucket:
        return cls(rate=rate, burst=burst, tokens=burst, updated=now)

    def refilled(self, now: float) -> TokenBucket:
        elapsed = max(0.0, now - self.updated)
        tokens = min(self.burst, self.tokens + elapsed * self.rate)
        return TokenBucket(self.rate, self.burst, tokens, max(now, self.updated))

    def take(self, cost: float, now: float) -> tuple[TokenBucket, float]:
        """(bucket after, seconds to wait): wait 0 means admitted and the tokens are spent.

        A cost above ``burst`` can never be admitted; its wait is infinite.
        """
        current = self.refilled(now)
        if cost <= current.tokens:
            return TokenBucket(self.rate, self.burst, current.tokens - cost, current.updated), 0.0
        if cost > self.burst:
            return current, math.inf
        return current, (cost - current.tokens) / self.rate


def retry_after_header(wait_s: float) -> str:
    """Whole seconds, rounded up, at least 1 (RFC 9110 delay-seconds)."""
    return str(max(1, math.ceil(wait_s)))

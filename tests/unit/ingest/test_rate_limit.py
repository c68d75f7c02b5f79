"""The token bucket: admits at most burst + rate x elapsed, and its wait is exactly enough."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from services.ingest.domain.rate_limit import TokenBucket, retry_after_header

rates = st.floats(min_value=0.1, max_value=1000, allow_nan=False)
bursts = st.integers(min_value=1, max_value=1000)
steps = st.lists(
    st.tuples(st.floats(min_value=0, max_value=5, allow_nan=False), st.integers(1, 50)),
    max_size=60,
)


@given(rates, bursts, steps)
def test_never_admits_more_than_burst_plus_refill(
    rate: float, burst: int, plan: list[tuple[float, int]]
) -> None:
    """Whatever the request pattern, admitted tokens never exceed burst + rate x elapsed."""
    now = 0.0
    bucket = TokenBucket.full(rate, burst, now)
    admitted = 0
    for gap, cost in plan:
        now += gap
        bucket, wait = bucket.take(cost, now)
        if wait == 0:
            admitted += cost
        assert 0 <= bucket.tokens <= burst
    assert admitted <= burst + rate * now + 1e-6


@given(rates, bursts, st.integers(1, 1000))
def test_waiting_the_answered_time_is_enough(rate: float, burst: int, cost: int) -> None:
    """After an empty bucket refuses, waiting the time it names admits the same cost."""
    bucket = TokenBucket(rate, burst, tokens=0.0, updated=0.0)
    after, wait = bucket.take(cost, 0.0)
    if cost > burst:
        assert math.isinf(wait)
        return
    assert wait > 0
    admitted, again = after.take(cost, wait * (1 + 1e-9) + 1e-9)
    assert again == 0
    assert admitted.tokens >= -1e-9


def test_refused_take_changes_nothing() -> None:
    """A refused take spends no tokens."""
    bucket = TokenBucket.full(1.0, 5, 0.0)
    bucket, _ = bucket.take(5, 0.0)
    after, wait = bucket.take(1, 0.5)
    assert wait == 0.5
    assert after.tokens == 0.5


def test_retry_after_is_whole_seconds_at_least_one() -> None:
    """Retry-After rounds up to whole seconds and is never 0."""
    assert retry_after_header(0.01) == "1"
    assert retry_after_header(1.2) == "2"
    assert retry_after_header(3.0) == "3"

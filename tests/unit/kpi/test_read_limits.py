"""The history-read limiter: refuses at once beyond its limit, frees a slot on every exit."""

from __future__ import annotations

import pytest

from services.kpi.entrypoints.limits import ReadLimiter
from shared.http.problems import TooManyRequests


async def test_beyond_the_limit_a_read_is_refused_with_retry_after() -> None:
    """Two holders of a limit of two: a third is refused (429, Retry-After), not queued."""
    limiter = ReadLimiter(2, retry_after_s=3)
    async with limiter.slot(), limiter.slot():
        assert limiter.in_use == 2
        with pytest.raises(TooManyRequests) as refused:
            async with limiter.slot():
                pytest.fail("a third read ran")
        assert refused.value.status == 429
        assert refused.value.headers == {"Retry-After": "3"}
    assert limiter.in_use == 0


async def test_a_failing_read_frees_its_slot() -> None:
    """A read that raises gives its slot back."""
    limiter = ReadLimiter(1, retry_after_s=1)
    with pytest.raises(RuntimeError):
        async with limiter.slot():
            raise RuntimeError("database away")
    async with limiter.slot():
        assert limiter.in_use == 1

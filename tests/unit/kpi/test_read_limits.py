"""The history-read bounds: the limiter refuses at once beyond its limit and frees a slot on
every exit; identical concurrent reads share one."""

from __future__ import annotations

import asyncio

import pytest

from services.kpi.entrypoints.limits import ReadLimiter, SingleFlight
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


async def test_identical_concurrent_reads_share_one() -> None:
    """Concurrent runs for one key make one computation and all get its result; another key,
    or the same key after it finished, makes its own."""
    flights: SingleFlight[str, int] = SingleFlight()
    made: list[str] = []
    release = asyncio.Event()

    async def make(key: str) -> int:
        made.append(key)
        await release.wait()
        return len(made)

    first = [asyncio.create_task(flights.run("a", lambda: make("a"))) for _ in range(5)]
    other = asyncio.create_task(flights.run("b", lambda: make("b")))
    await asyncio.sleep(0)  # let every run register (no time passes)
    release.set()
    results = await asyncio.gather(*first)
    assert len(set(results)) == 1
    await other
    assert sorted(made) == ["a", "b"]
    assert len(flights) == 0
    assert await flights.run("a", lambda: make("a")) == 3


async def test_a_failed_shared_read_fails_every_request_sharing_it() -> None:
    """The failure reaches each request that shared the read; the next read starts afresh."""
    flights: SingleFlight[str, int] = SingleFlight()
    release = asyncio.Event()

    async def failing() -> int:
        await release.wait()
        raise TooManyRequests("busy")

    runs = [asyncio.create_task(flights.run("k", failing)) for _ in range(3)]
    await asyncio.sleep(0)
    release.set()
    outcomes = await asyncio.gather(*runs, return_exceptions=True)
    assert all(isinstance(o, TooManyRequests) for o in outcomes)

    async def ok() -> int:
        return 7

    assert await flights.run("k", ok) == 7

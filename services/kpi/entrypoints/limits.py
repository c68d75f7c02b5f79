"""Bounds on expensive reads: how many run at once (429 beyond, never queued), and identical
concurrent reads shared."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Generic, TypeVar

from shared.http.problems import TooManyRequests

K = TypeVar("K")
T = TypeVar("T")


class ReadLimiter:
    """At most `limit` holders at once; one more is refused at once with 429 and Retry-After.

    Refusing rather than queueing keeps the cost of a burst of reads bounded: waiting requests
    would still hold connections and memory, and the consumer shares the process's event loop
    and the database with them. Check-and-take has no await in between: atomic on the loop.
    """

    def __init__(self, limit: int, retry_after_s: int, what: str = "history reads") -> None:
        self.limit = limit
        self.retry_after_s = retry_after_s
        self.what = what
        self.in_use = 0

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        if self.in_use >= self.limit:
            raise TooManyRequests(
                f"{self.limit} {self.what} are running, the most this service runs at once; "
                f"try again in {self.retry_after_s} s",
                headers={"Retry-After": str(self.retry_after_s)},
            )
        self.in_use += 1
        try:
            yield
        finally:
            self.in_use -= 1


class SingleFlight(Generic[K, T]):
    """Concurrent requests for the same key share one computation (the first one's).

    Ten identical `as_of` reads arriving together cost one read of the history. The shared
    task runs to its end even if the request that started it goes away (it holds its own
    read slot, so the limiter still bounds what runs); its result is never mutated by readers.
    """

    def __init__(self) -> None:
        self._flights: dict[K, asyncio.Task[T]] = {}

    def __len__(self) -> int:
        return len(self._flights)

    async def run(self, key: K, make: Callable[[], Awaitable[T]]) -> T:
        flight = self._flights.get(key)
        if flight is None:
            flight = asyncio.ensure_future(make())
            self._flights[key] = flight
            flight.add_done_callback(lambda done: self._landed(key, done))
        return await asyncio.shield(flight)

    def _landed(self, key: K, flight: asyncio.Task[T]) -> None:
        if self._flights.get(key) is flight:
            del self._flights[key]
        if not flight.cancelled():
            flight.exception()  # retrieved: a failure nobody awaited any more is not logged

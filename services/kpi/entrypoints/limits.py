"""A bound on expensive reads running at once, answering 429 beyond it (never queueing)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from shared.http.problems import TooManyRequests


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

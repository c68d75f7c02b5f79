"""Background tasks owned by a FastAPI lifespan: started, watched by /readyz, cancelled on exit."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import structlog

log = structlog.stdlib.get_logger("shared.tasks")


class TaskGroup:
    def __init__(self) -> None:
        self._tasks: dict[str, asyncio.Task[Any]] = {}

    def start(self, name: str, coroutine: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.create_task(coroutine, name=name)
        task.add_done_callback(self._report)
        self._tasks[name] = task

    @staticmethod
    def _report(task: asyncio.Task[Any]) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.error("background_task_crashed", task=task.get_name(), error=repr(task.exception()))

    def alive(self, name: str) -> bool:
        task = self._tasks.get(name)
        return task is not None and not task.done()

    def readiness(self, name: str) -> Callable[[], Awaitable[bool]]:
        async def check() -> bool:
            return self.alive(name)

        return check

    async def stop(self) -> None:
        for task in self._tasks.values():
            task.cancel()
        for task in self._tasks.values():
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()


async def run_periodically(
    action: Callable[[], Awaitable[bool]], *, idle_s: float, wake: asyncio.Event | None = None
) -> None:
    """Call `action` repeatedly; when it reports no work, wait `idle_s` or until woken.

    An exception in `action` is logged and retried after the idle delay: a database outage must
    not end the loop.
    """
    while True:
        try:
            busy = await action()
        except asyncio.CancelledError:
            raise
        except Exception as error:
            log.warning("periodic_action_failed", error=repr(error))
            busy = False
        if busy:
            continue
        if wake is None:
            await asyncio.sleep(idle_s)
            continue
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(wake.wait(), timeout=idle_s)
        wake.clear()

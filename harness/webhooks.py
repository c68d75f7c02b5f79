"""A real HTTP webhook receiver for tests and benchmarks: records every request; can be told to
fail."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import uvicorn
from fastapi import FastAPI, Request, Response

from harness.stack import free_port


@dataclass
class ReceivedWebhook:
    headers: dict[str, str]
    body: bytes
    # Wall-clock arrival time (time.time()), for latency measurements.
    received_at: float = 0.0
    # The status code the receiver answered.
    status_code: int = 204


@dataclass
class WebhookReceiver:
    url: str = ""
    # Requests answered with success, in arrival order.
    received: list[ReceivedWebhook] = field(default_factory=list)
    # How many of the next requests to fail (answered with `fail_status`).
    fail_next: int = 0
    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    # Every request, failed ones included, in arrival order.
    attempts: list[ReceivedWebhook] = field(default_factory=list)
    fail_status: int = 503
    # Sent as `Retry-After` with failures when set.
    retry_after: str | None = None
    # Fail every request until set to False (on top of `fail_next`).
    failing: bool = False
    # When set, requests wait for this event before being answered (a slow endpoint).
    gate: asyncio.Event | None = None
    in_progress: int = 0
    attempted: asyncio.Event = field(default_factory=asyncio.Event)
    # Set when a request has arrived (before any gate holds it).
    entered: asyncio.Event = field(default_factory=asyncio.Event)

    async def wait_for(self, count: int, timeout_s: float) -> list[ReceivedWebhook]:
        """Wait until `count` requests have been answered with success."""
        await _wait_for_length(self.received, count, self.arrived, timeout_s)
        return self.received

    async def wait_for_attempts(self, count: int, timeout_s: float) -> list[ReceivedWebhook]:
        """Wait until `count` requests (successful or not) have been answered."""
        await _wait_for_length(self.attempts, count, self.attempted, timeout_s)
        return self.attempts


async def _wait_for_length(
    records: list[ReceivedWebhook], count: int, grown: asyncio.Event, timeout_s: float
) -> None:
    """Until `records` holds `count` entries; `grown` is set each time one is appended."""
    async with asyncio.timeout(timeout_s):
        while len(records) < count:
            grown.clear()
            await grown.wait()


@contextlib.asynccontextmanager
async def webhook_receiver(
    *, port: int | None = None, receiver: WebhookReceiver | None = None
) -> AsyncIterator[WebhookReceiver]:
    """Serve until the block ends. `port` and `receiver` bring a receiver that was stopped back
    on the same URL, recording into the same lists (an endpoint down for a while, then back)."""
    receiver = receiver or WebhookReceiver()
    app = FastAPI()

    @app.post("/hook")
    async def hook(request: Request) -> Response:
        body = await request.body()
        arrived_at = time.time()
        receiver.in_progress += 1
        receiver.entered.set()
        try:
            if receiver.gate is not None:
                await receiver.gate.wait()
        finally:
            receiver.in_progress -= 1
        if receiver.fail_next > 0 or receiver.failing:
            receiver.fail_next = max(receiver.fail_next - 1, 0)
            record = ReceivedWebhook(dict(request.headers), body, arrived_at, receiver.fail_status)
            receiver.attempts.append(record)
            receiver.attempted.set()
            headers = {"retry-after": receiver.retry_after} if receiver.retry_after else None
            return Response(status_code=receiver.fail_status, headers=headers)
        record = ReceivedWebhook(dict(request.headers), body, arrived_at, 204)
        receiver.attempts.append(record)
        receiver.received.append(record)
        receiver.attempted.set()
        receiver.arrived.set()
        return Response(status_code=204)

    port = port or free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            app, host="127.0.0.1", port=port, log_config=None, access_log=False, lifespan="off"
        )
    )
    task = asyncio.create_task(server.serve())
    async with asyncio.timeout(10):
        while not server.started:  # noqa: ASYNC110 - uvicorn offers no start-up event
            await asyncio.sleep(0.02)
    receiver.url = f"http://127.0.0.1:{port}/hook"
    try:
        yield receiver
    finally:
        if receiver.gate is not None:
            receiver.gate.set()
        server.should_exit = True
        await task

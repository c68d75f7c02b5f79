"""A local webhook receiver for the demo: verifies Standard Webhooks signatures and prints each
delivery readably.

    python -m demo.receiver --port 8090 --alerts-url http://127.0.0.1:8003

With ``--alerts-url`` it subscribes itself through the alerts admin API (``SHINCHOKU_ADMIN_TOKEN``)
at start, keeps the signing secret the answer shows once, and deletes the subscription when it
stops (Ctrl-C). A delivery whose signature does not verify is answered 401 and counted, never
printed as news.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hmac
import json
import os
import signal
import sys
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from services.alerts.domain.signing import sign

# Standard Webhooks: reject timestamps further than this from now (replays).
TOLERANCE_S = 5 * 60
# The kinds the demo subscribes to: every status kind, recoveries included.
DEMO_KINDS = ("slipped", "overdue", "stale", "recovered")


class SignatureError(Exception):
    """The delivery is not signed with the subscription's secret (or is too old)."""


def verify(
    secret: str, headers: Mapping[str, str], body: bytes, *, now: float | None = None
) -> str:
    """Check a delivery's ``webhook-*`` headers against `secret`; returns its message id.

    One of the space-separated ``v1,<signature>`` values (several while a rotated secret still
    co-signs) must match HMAC-SHA256 of ``{id}.{timestamp}.{body}``; the timestamp must be within
    TOLERANCE_S of now.
    """
    lowered = {key.lower(): value for key, value in headers.items()}
    message_id = lowered.get("webhook-id")
    timestamp = lowered.get("webhook-timestamp")
    signatures = lowered.get("webhook-signature")
    if not message_id or not timestamp or not signatures:
        raise SignatureError("missing webhook-id, webhook-timestamp or webhook-signature")
    try:
        sent_at = int(timestamp)
    except ValueError as error:
        raise SignatureError(f"webhook-timestamp {timestamp!r} is not a number") from error
    current = time.time() if now is None else now
    if abs(current - sent_at) > TOLERANCE_S:
        raise SignatureError(f"webhook-timestamp {sent_at} is more than {TOLERANCE_S} s away")
    expected = sign(secret, message_id, sent_at, body)
    if not any(hmac.compare_digest(expected, given) for given in signatures.split()):
        raise SignatureError("no signature matches the secret")
    return message_id


def describe(payload: Mapping[str, Any], *, message_id: str, repeat: bool) -> list[str]:
    """A delivery as a few readable lines: the headline, then one line per change."""
    data = payload.get("data") or {}
    changes: Sequence[Mapping[str, Any]] = data.get("changes") or [data]
    arrived = datetime.now().strftime("%H:%M:%S")
    again = "  (redelivery)" if repeat else ""
    lines = [
        f"[webhook] {arrived} {payload.get('type')}  {len(changes)} change(s), "
        f"signature verified, id {message_id}{again}"
    ]
    for change in changes:
        ministries = ",".join(change.get("ministries") or [])
        previous = change.get("previous_status") or "-"
        lines.append(
            # A measure's divergence has no KPI: the measure stands in.
            f"          {change.get('evaluated_on')}  "
            f"{change.get('kpi_id') or change.get('measure_id')} ({ministries})  "
            f"{previous} -> {change.get('status')}"
        )
        message = (change.get("explanation") or {}).get("message")
        if message:
            lines.append(f"            {message}")
    return lines


@dataclass
class Delivery:
    message_id: str
    payload: dict[str, Any]
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """Verified deliveries in arrival order; the secret is set once the subscription exists."""

    secret: str | None = None
    out: Callable[[str], None] = field(default=lambda line: print(line, flush=True))
    deliveries: list[Delivery] = field(default_factory=list)
    rejected: int = 0
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def kpi_ids(self) -> set[str]:
        """Every KPI or milestone a verified delivery carried a change of."""
        return {
            str(change.get("kpi_id"))
            for delivery in self.deliveries
            for change in (delivery.payload.get("data") or {}).get("changes") or []
            if change.get("kpi_id")
        }

    async def handle(self, request: Request) -> Response:
        body = await request.body()
        headers = dict(request.headers)
        if self.secret is None:
            return Response(status_code=503, headers={"retry-after": "1"})
        try:
            message_id = verify(self.secret, headers, body)
            payload = json.loads(body)
        except (SignatureError, ValueError) as error:
            self.rejected += 1
            self.out(f"[webhook] rejected a delivery: {error}")
            return Response(status_code=401)
        repeat = any(d.message_id == message_id for d in self.deliveries)
        self.deliveries.append(Delivery(message_id, payload, headers, body))
        self.arrived.set()
        for line in describe(payload, message_id=message_id, repeat=repeat):
            self.out(line)
        return Response(status_code=204)

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/hooks", self.handle, methods=["POST"])])

    async def wait_for(self, done: Callable[[Receiver], bool], timeout_s: float) -> None:
        """Wait (bounded) until `done(self)` holds."""
        async with asyncio.timeout(timeout_s):
            while not done(self):
                self.arrived.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.arrived.wait(), timeout=1.0)


@contextlib.asynccontextmanager
async def serving(receiver: Receiver, host: str = "127.0.0.1", port: int = 0) -> AsyncIterator[str]:
    """Run `receiver` on `host:port` (0: a free port) in this event loop; yields its URL."""
    server = uvicorn.Server(
        uvicorn.Config(
            receiver.app(),
            host=host,
            port=port,
            log_config=None,
            access_log=False,
            lifespan="off",
        )
    )
    task = asyncio.create_task(server.serve())
    async with asyncio.timeout(15):
        while not server.started:  # uvicorn offers no start-up event: poll
            if task.done():
                await task  # raises the start-up error
                raise RuntimeError(f"the receiver could not listen on {host}:{port}")
            await asyncio.sleep(0.02)
    bound = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://{host}:{bound}/hooks"
    finally:
        server.should_exit = True
        await task


async def subscribe(
    http: httpx.AsyncClient, alerts_url: str, admin_token: str, url: str
) -> tuple[str, str]:
    """A subscription to every status kind for `url`; returns its id and signing secret."""
    answer = await http.post(
        f"{alerts_url.rstrip('/')}/v1/subscriptions",
        json={
            "url": url,
            "filter": {"kinds": list(DEMO_KINDS)},
            "description": "shinchoku demo receiver",
        },
        headers={"authorization": f"Bearer {admin_token}"},
    )
    if answer.status_code != 201:
        raise RuntimeError(f"alerts refused the subscription ({answer.status_code}): {answer.text}")
    body = answer.json()
    return str(body["id"]), str(body["secret"])


async def unsubscribe(
    http: httpx.AsyncClient, alerts_url: str, admin_token: str, subscription_id: str
) -> None:
    await http.delete(
        f"{alerts_url.rstrip('/')}/v1/subscriptions/{subscription_id}",
        headers={"authorization": f"Bearer {admin_token}"},
    )


async def _run(args: argparse.Namespace) -> int:
    receiver = Receiver()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    async with (
        serving(receiver, args.host, args.port) as url,
        httpx.AsyncClient(timeout=10) as http,
    ):
        print(f"[webhook] receiving on {url}", flush=True)
        subscription_id = None
        token = os.environ.get("SHINCHOKU_ADMIN_TOKEN", "")
        if args.alerts_url:
            if not token:
                print("[webhook] SHINCHOKU_ADMIN_TOKEN is not set", file=sys.stderr)
                return 2
            subscription_id, receiver.secret = await subscribe(http, args.alerts_url, token, url)
            print(f"[webhook] subscribed ({subscription_id}) at {args.alerts_url}", flush=True)
        else:
            receiver.secret = args.secret or os.environ.get("SHINCHOKU_DEMO_WEBHOOK_SECRET")
        try:
            await stop.wait()
        finally:
            if subscription_id is not None:
                with contextlib.suppress(httpx.HTTPError):
                    await unsubscribe(http, args.alerts_url, token, subscription_id)
    print(
        f"[webhook] stopped: {len(receiver.deliveries)} verified deliveries, "
        f"{receiver.rejected} rejected",
        flush=True,
    )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m demo.receiver", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8090)
    parser.add_argument(
        "--alerts-url", default=None, help="subscribe at this alerts service (admin API)"
    )
    parser.add_argument(
        "--secret", default=None, help="without --alerts-url: the subscription's whsec_ secret"
    )
    args = parser.parse_args(argv)
    return asyncio.run(_run(args))


if __name__ == "__main__":
    sys.exit(main())

"""Webhook receivers that misbehave at the HTTP level, on a real TCP socket: one that drips its
response a byte at a time, one that answers with a huge body. Each records, per `webhook-id`,
how many of its requests are open at once (from the request's arrival until the sender closes
the connection), so tests can assert that two attempts of one delivery never overlapped."""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

# A response that never ends: a status line, then one header value growing a byte at a time.
DRIP_START = b"HTTP/1.1 200 OK\r\nx-drip: "


@dataclass
class RawReceiver:
    # "drip": a response one byte every `drip_s`, never finishing (until the sender gives up);
    # "huge": 200 with a `huge_bytes` body, sent as fast as the sender reads it.
    mode: str = "drip"
    drip_s: float = 0.2
    huge_bytes: int = 10 * 1024 * 1024
    url: str = ""
    # Per webhook-id: open requests now, and the most ever open at once.
    open_now: Counter[str] = field(default_factory=Counter)
    most_open: Counter[str] = field(default_factory=Counter)
    # One entry per request: (webhook-id, response bytes written before the sender hung up).
    finished: list[tuple[str, int]] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    async def wait_finished(self, count: int, timeout_s: float) -> list[tuple[str, int]]:
        """Wait until `count` requests have ended (the sender closed the connection)."""
        async with asyncio.timeout(timeout_s):
            while len(self.finished) < count:
                self.changed.clear()
                await self.changed.wait()
        return self.finished

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        webhook_id = ""
        written = 0
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            headers = {}
            for line in head.decode("latin-1").split("\r\n")[1:]:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            await reader.readexactly(int(headers.get("content-length", "0")))
            webhook_id = headers.get("webhook-id", "")
            self.open_now[webhook_id] += 1
            self.most_open[webhook_id] = max(self.most_open[webhook_id], self.open_now[webhook_id])
            self.changed.set()
            closed = asyncio.ensure_future(reader.read())  # b"" once the sender hangs up
            try:
                if self.mode == "huge":
                    writer.write(
                        b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\n"
                        + f"content-length: {self.huge_bytes}\r\n\r\n".encode()
                    )
                    chunk = b"x" * 65536
                    while written < self.huge_bytes and not closed.done():
                        writer.write(chunk)
                        await writer.drain()
                        written += len(chunk)
                else:
                    while not closed.done():
                        byte = DRIP_START[written : written + 1] or b"a"
                        writer.write(byte)
                        await writer.drain()
                        written += 1
                        # The receiver's own behaviour (slow on purpose), not a test waiting.
                        with contextlib.suppress(TimeoutError):
                            await asyncio.wait_for(asyncio.shield(closed), self.drip_s)
                await closed
            finally:
                closed.cancel()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            if webhook_id:
                self.open_now[webhook_id] -= 1
                self.finished.append((webhook_id, written))
                self.changed.set()
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()


@contextlib.asynccontextmanager
async def raw_receiver(mode: str, **options: float) -> AsyncIterator[RawReceiver]:
    receiver = RawReceiver(mode=mode, **options)  # type: ignore[arg-type]
    server = await asyncio.start_server(receiver._serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    receiver.url = f"http://127.0.0.1:{port}/hook"
    try:
        async with server:
            yield receiver
    finally:
        server.close()

"""The sender's parts without a network: Retry-After parsing, the guard refusing before any
connection, the total deadline and the body cap (on httpx's mock transport)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

import httpcore
import httpx
import pytest

from services.alerts.adapters.webhook_sender import (
    GuardedNetworkBackend,
    TargetRefused,
    WebhookSender,
    parse_retry_after,
)


def test_retry_after_forms() -> None:
    """Delta-seconds and HTTP-date forms are read; nonsense is ignored."""
    now = datetime(2026, 4, 1, 12, 0, tzinfo=UTC)
    assert parse_retry_after("120") == 120.0
    assert parse_retry_after("-5") == 0.0
    assert parse_retry_after("Wed, 01 Apr 2026 12:02:00 GMT", now) == 120.0
    assert parse_retry_after("Wed, 01 Apr 2026 11:00:00 GMT", now) == 0.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None


class RecordingBackend(httpcore.AsyncNetworkBackend):
    """Records connection attempts instead of making them."""

    def __init__(self) -> None:
        self.connected: list[tuple[str, int]] = []

    async def connect_tcp(self, host: str, port: int, **_: object) -> httpcore.AsyncNetworkStream:  # type: ignore[override]
        self.connected.append((host, port))
        raise httpcore.ConnectError("recorded")

    async def sleep(self, seconds: float) -> None:
        return None


def resolver_answering(*addresses: str):  # type: ignore[no-untyped-def]
    async def resolve(host: str, port: int) -> list[str]:
        return list(addresses)

    return resolve


async def test_rebinding_to_an_internal_address_is_refused_before_connecting() -> None:
    """A host that now resolves to the metadata address is refused; nothing is connected."""
    inner = RecordingBackend()
    backend = GuardedNetworkBackend(
        ["127.0.0.1/32"], resolver=resolver_answering("169.254.169.254"), inner=inner
    )
    with pytest.raises(TargetRefused, match="metadata"):
        await backend.connect_tcp("hooks.example.jp", 443)
    assert inner.connected == []


async def test_the_checked_address_is_the_one_connected_to() -> None:
    """The backend connects to the address it checked, never resolving the name again."""
    inner = RecordingBackend()
    backend = GuardedNetworkBackend(
        [],
        resolver=resolver_answering("93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c"),
        inner=inner,
    )
    with pytest.raises(httpcore.ConnectError):
        await backend.connect_tcp("hooks.example.jp", 8443)
    assert inner.connected == [
        ("93.184.215.14", 8443),
        ("2606:2800:21f:cb07:6820:80da:af6b:8b2c", 8443),
    ]


async def test_unix_sockets_are_refused() -> None:
    """Webhooks go over TCP only."""
    with pytest.raises(TargetRefused):
        await GuardedNetworkBackend([]).connect_unix_socket("/var/run/docker.sock")


def sender_answering(
    respond: Callable[[httpx.Request], httpx.Response], **options: Any
) -> WebhookSender:
    return WebhookSender(httpx.AsyncClient(transport=httpx.MockTransport(respond)), **options)


class Body(httpx.AsyncByteStream):
    """A body of `size` bytes, streamed in 64 KB pieces as a socket would deliver it."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.sent = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while self.sent < self.size:
            piece = b"x" * min(65536, self.size - self.sent)
            self.sent += len(piece)
            yield piece


class Drip(httpx.AsyncByteStream):
    """A body that arrives a byte at a time, forever (each read well within any per-read
    timeout)."""

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while True:
            await asyncio.sleep(0.01)  # the slow receiver's own pace
            yield b"."


async def test_an_attempt_is_cut_at_its_total_deadline() -> None:
    """A body that never ends is a timeout at the total deadline, naming what was received."""
    sender = sender_answering(lambda _: httpx.Response(200, stream=Drip()), deadline_s=0.2)
    result = await sender.send("http://hooks.test/", b"{}", {})
    assert result.result == "timeout"
    assert result.status_code == 200
    assert result.error is not None
    assert "0.2 s deadline" in result.error
    assert "reading the body" in result.error
    assert not result.succeeded


async def test_a_shorter_deadline_for_one_send_wins_but_never_a_longer_one() -> None:
    """The worker may shorten one send's deadline (the lease is running out), never extend it."""
    sender = sender_answering(lambda _: httpx.Response(200, stream=Drip()), deadline_s=0.2)
    result = await sender.send("http://hooks.test/", b"{}", {}, deadline_s=1000)
    assert result.result == "timeout"
    assert "0.2 s deadline" in (result.error or "")
    result = await sender.send("http://hooks.test/", b"{}", {}, deadline_s=0.05)
    assert "0.05 s deadline" in (result.error or "")


@pytest.mark.parametrize(
    ("size", "cap", "read", "truncated"),
    [(0, 64, 0, False), (64, 64, 64, False), (65, 64, 64, True), (10_000_000, 65536, 65536, True)],
)
async def test_the_response_body_is_read_up_to_the_cap(
    size: int, cap: int, read: int, truncated: bool
) -> None:
    """At most `max_response_bytes` of the body is read; a longer body is marked truncated."""
    body = Body(size)
    sender = sender_answering(lambda _: httpx.Response(503, stream=body), max_response_bytes=cap)
    result = await sender.send("http://hooks.test/", b"{}", {})
    assert (result.result, result.status_code) == ("http_error", 503)
    assert (result.response_bytes, result.response_truncated) == (read, truncated)
    assert body.sent <= cap + 65536  # one network read past the cap at most


async def test_connection_errors_are_not_timeouts() -> None:
    """A refused connection is a network error, told apart from a timeout."""

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    result = await sender_answering(refuse).send("http://hooks.test/", b"{}", {})
    assert result.result == "network_error"
    assert "ConnectError" in (result.error or "")

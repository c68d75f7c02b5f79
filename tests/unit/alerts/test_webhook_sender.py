"""The sender's pure parts: Retry-After parsing, and the guard refusing before any connection."""

from __future__ import annotations

from datetime import UTC, datetime

import httpcore
import pytest

from services.alerts.adapters.webhook_sender import (
    GuardedNetworkBackend,
    TargetRefused,
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

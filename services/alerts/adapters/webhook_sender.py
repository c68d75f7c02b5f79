"""Sends one signed webhook over HTTP (httpx) and reports what happened.

The SSRF guard is enforced where the connection is made: the transport's network backend
resolves the target host itself, refuses it unless every address is acceptable
(`domain.ssrf.refusal_reason`), and connects to an address it has just checked. DNS answers that
change after a subscription was created (DNS rebinding) therefore cannot turn a delivery inward.
Proxies from the environment are ignored and redirects are not followed (Standard Webhooks:
a 3xx is a failure).

Each attempt has a **total** deadline (connect + send + the whole response), not only httpx's
per-operation timeouts: a receiver dripping one byte every few seconds would otherwise keep an
attempt open indefinitely. The response body is read raw (never decompressed) up to a cap and
then the connection is dropped: a receiver cannot make the sender buffer a huge body.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpcore
import httpx

from services.alerts.domain.ssrf import Resolver, TargetRefused, check_target
from services.alerts.ports import SendResult

__all__ = [
    "GuardedNetworkBackend",
    "Resolver",
    "SendResult",
    "TargetRefused",
    "WebhookSender",
    "check_target",
    "guarded_client",
    "resolve",
]


async def resolve(host: str, port: int = 443) -> list[str]:
    """Every address `host` resolves to (IPv4 and IPv6), in the resolver's order."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


class GuardedNetworkBackend(httpcore.AsyncNetworkBackend):
    """An httpcore backend that connects only to addresses the SSRF guard accepts."""

    def __init__(
        self,
        allowed: Sequence[str],
        *,
        resolver: Resolver = resolve,
        inner: httpcore.AsyncNetworkBackend | None = None,
    ) -> None:
        self._allowed = list(allowed)
        self._resolver = resolver
        self._inner = inner or httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        async with asyncio.timeout(timeout):
            addresses = await check_target(host, port, self._allowed, self._resolver)
        last_error: Exception | None = None
        for address in addresses:
            try:
                return await self._inner.connect_tcp(
                    address,
                    port,
                    timeout=timeout,
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as error:
                last_error = error
        assert last_error is not None
        raise last_error

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise TargetRefused("unix sockets are not webhook targets")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


def guarded_client(
    *, allowed: Sequence[str], timeout_s: float, resolver: Resolver = resolve
) -> httpx.AsyncClient:
    """An httpx client whose every connection passes the SSRF guard."""
    transport = httpx.AsyncHTTPTransport(trust_env=False, retries=0)
    # httpx builds its httpcore pool without a way to pass a network backend: replace it.
    transport._pool = httpcore.AsyncConnectionPool(
        ssl_context=httpx.create_ssl_context(trust_env=False),
        max_connections=200,
        max_keepalive_connections=50,
        keepalive_expiry=30.0,
        http1=True,
        http2=False,
        network_backend=GuardedNetworkBackend(allowed, resolver=resolver),
    )
    return httpx.AsyncClient(
        transport=transport, timeout=timeout_s, follow_redirects=False, trust_env=False
    )


DEFAULT_DEADLINE_S = 15.0
DEFAULT_MAX_RESPONSE_BYTES = 64 * 1024


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a `Retry-After` header (delta-seconds or HTTP-date)."""
    if value is None:
        return None
    value = value.strip()
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max((when - (now or datetime.now(UTC))).total_seconds(), 0.0)


class WebhookSender:
    """Sends with a total deadline per attempt and a cap on the response body read."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        *,
        deadline_s: float = DEFAULT_DEADLINE_S,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
    ) -> None:
        self._client = client
        self.deadline_s = deadline_s
        self._max_response_bytes = max_response_bytes

    async def send(
        self,
        url: str,
        body: bytes,
        headers: dict[str, str],
        *,
        deadline_s: float | None = None,
    ) -> SendResult:
        """One POST, over within `deadline_s` (default: the sender's) whatever the receiver does."""
        deadline = self.deadline_s if deadline_s is None else min(deadline_s, self.deadline_s)
        started = time.perf_counter()
        # What is known so far, for an honest account when the deadline cuts the exchange.
        status_code: int | None = None
        received = 0

        def failed(result: str, error: str) -> SendResult:
            return SendResult(
                status_code, time.perf_counter() - started, error[:500], None, result, received
            )

        try:
            async with asyncio.timeout(max(deadline, 0.0)):
                async with self._client.stream(
                    "POST", url, content=body, headers=headers
                ) as response:
                    status_code = response.status_code
                    truncated = False
                    async for chunk in response.aiter_raw():
                        if received + len(chunk) > self._max_response_bytes:
                            # Over the cap: stop reading (one network read, at most 64 KB, past
                            # it); leaving the stream unread closes the connection.
                            received, truncated = self._max_response_bytes, True
                            break
                        received += len(chunk)
        except TimeoutError:
            phase = "waiting for the response" if status_code is None else "reading the body"
            return failed(
                "timeout",
                f"no complete response within the {deadline:g} s deadline "
                f"({phase}; {received} body bytes received)",
            )
        except TargetRefused as error:
            return failed("refused", f"target refused: {error}")
        except httpx.TimeoutException as error:
            return failed("timeout", f"{type(error).__name__}: {error}")
        except httpx.HTTPError as error:
            return failed("network_error", f"{type(error).__name__}: {error}")
        latency = time.perf_counter() - started
        if response.is_success:
            return SendResult(status_code, latency, None, None, "success", received, truncated)
        return SendResult(
            status_code,
            latency,
            f"HTTP {status_code}",
            parse_retry_after(response.headers.get("retry-after")),
            "http_error",
            received,
            truncated,
        )

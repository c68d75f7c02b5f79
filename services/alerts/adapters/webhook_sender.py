"""Sends one signed webhook over HTTP (httpx) and reports what happened."""

from __future__ import annotations

import time
from dataclasses import dataclass

import httpx


@dataclass(frozen=True, slots=True)
class SendResult:
    status_code: int | None
    latency_s: float
    error: str | None
    retry_after_s: float | None

    @property
    def succeeded(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def parse_retry_after(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        return None  # HTTP-date form: fall back to our own schedule


class WebhookSender:
    def __init__(self, client: httpx.AsyncClient) -> None:
        self._client = client

    async def send(self, url: str, body: bytes, headers: dict[str, str]) -> SendResult:
        started = time.perf_counter()
        try:
            response = await self._client.post(url, content=body, headers=headers)
        except httpx.HTTPError as error:
            return SendResult(
                None, time.perf_counter() - started, f"{type(error).__name__}: {error}"[:500], None
            )
        return SendResult(
            response.status_code,
            time.perf_counter() - started,
            None if response.is_success else f"HTTP {response.status_code}",
            parse_retry_after(response.headers.get("retry-after")),
        )

"""A short-lived cache of subscriptions and silences in front of their stores."""

from __future__ import annotations

import asyncio
import builtins
from datetime import datetime

from services.alerts.domain.silences import Silence
from services.alerts.ports import Silences, Subscription, Subscriptions


class StoreReadCache:
    """Subscriptions and silences change rarely and are read for every status change and
    every attempt: they are cached for `ttl_s` (one second by default). Writes through this
    process's API invalidate the cache at once; another instance's writes are seen within
    `ttl_s`."""

    def __init__(
        self, subscriptions: Subscriptions, silences: Silences, ttl_s: float = 1.0
    ) -> None:
        self._subscriptions = subscriptions
        self._silences = silences
        self._ttl = ttl_s
        self._active: tuple[float, builtins.list[Subscription]] | None = None
        self._in_force: tuple[float, builtins.list[Silence]] | None = None
        self._by_id: dict[str, tuple[float, Subscription | None]] = {}

    def invalidate(self) -> None:
        self._active = None
        self._in_force = None
        self._by_id.clear()

    def _fresh(self, loaded_at: float) -> bool:
        return asyncio.get_running_loop().time() - loaded_at < self._ttl

    async def active_subscriptions(self) -> builtins.list[Subscription]:
        if self._active is None or not self._fresh(self._active[0]):
            loaded_at = asyncio.get_running_loop().time()
            self._active = (loaded_at, await self._subscriptions.active())
        return self._active[1]

    async def subscription(self, subscription_id: str) -> Subscription | None:
        cached = self._by_id.get(subscription_id)
        if cached is None or not self._fresh(cached[0]):
            loaded_at = asyncio.get_running_loop().time()
            cached = (loaded_at, await self._subscriptions.get(subscription_id))
            self._by_id[subscription_id] = cached
        return cached[1]

    async def silences(self, now: datetime) -> builtins.list[Silence]:
        """Silences that can still mute something (loaded with a margin: the cache may be
        read a little later than it was loaded)."""
        if self._in_force is None or not self._fresh(self._in_force[0]):
            loaded_at = asyncio.get_running_loop().time()
            records = await self._silences.list(in_force_at=now, limit=100_000)
            self._in_force = (loaded_at, [r.silence for r in records])
        return [s for s in self._in_force[1] if s.ends_at is None or s.ends_at > now]

"""Silence administration: mute notifications by scope for a while or nightly; end a silence
early (what it held back is released if still relevant)."""

from __future__ import annotations

import secrets as secrets_module
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from pydantic import ValidationError

from services.alerts.domain.silences import QuietHours, Silence, SilenceScope
from services.alerts.ports import SilenceRecord, Stores
from services.alerts.service.errors import FieldIssue, InvalidInput, NotFound
from services.alerts.service.policy import no_wakeup
from shared.clock import Clock


@dataclass
class SilenceAdmin:
    stores: Stores
    clock: Clock
    wake_batcher: Callable[[], None] = field(default=no_wakeup)

    # Silences ------------------------------------------------------------------------------

    async def create_silence(
        self,
        *,
        scope: SilenceScope,
        starts_at: datetime | None,
        ends_at: datetime | None,
        quiet_hours: QuietHours | None,
        reason: str | None,
    ) -> SilenceRecord:
        silence_id = "sil_" + secrets_module.token_hex(10)
        try:
            silence = Silence(
                id=silence_id,
                scope=scope,
                starts_at=starts_at,
                ends_at=ends_at,
                quiet_hours=quiet_hours,
            )
        except ValidationError as error:
            raise InvalidInput(
                "the silence is not valid",
                errors=[
                    FieldIssue(field=".".join(map(str, e["loc"])) or "(body)", reason=e["msg"])
                    for e in error.errors()
                ],
            ) from error
        now = self.clock()
        if silence.ends_at is not None and silence.ends_at <= now:
            raise InvalidInput(
                "the silence would already be over",
                errors=[FieldIssue(field="ends_at", reason="in the past")],
            )
        if (
            scope.subscription_id is not None
            and await self.stores.subscriptions.get(scope.subscription_id) is None
        ):
            raise NotFound(f"no subscription {scope.subscription_id!r}")
        record = SilenceRecord(silence=silence, reason=reason, created_at=now)
        await self.stores.silences.insert(record)
        self.stores.cache.invalidate()
        return record

    async def silence(self, silence_id: str) -> SilenceRecord:
        found = await self.stores.silences.get(silence_id)
        if found is None:
            raise NotFound(f"no silence {silence_id!r}")
        return found

    async def list_silences(
        self, *, include_ended: bool, limit: int, offset: int = 0
    ) -> tuple[list[SilenceRecord], int]:
        """A page of silences and the total matching."""
        in_force_at = None if include_ended else self.clock()
        page = await self.stores.silences.list(in_force_at=in_force_at, limit=limit, offset=offset)
        return page, await self.stores.silences.count(in_force_at=in_force_at)

    async def end_silence(self, silence_id: str) -> SilenceRecord:
        """End a silence now; what it held back is released (if still relevant)."""
        now = self.clock()
        ended = await self.stores.silences.end(silence_id, now)
        self.stores.cache.invalidate()
        if ended is None:
            raise NotFound(f"no silence {silence_id!r}")
        if await self.stores.notifications.end_mutes_by(silence_id, now):
            self.wake_batcher()
        return ended

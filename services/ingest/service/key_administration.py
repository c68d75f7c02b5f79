"""Ministry API keys: create, list, revoke (the admin API and its audit log lines)."""

from __future__ import annotations

from dataclasses import dataclass

from services.ingest.domain.keys import KeyRecord
from services.ingest.ports import KeyLookup, KeyStore
from shared.clock import Clock
from shared.logs import get_logger

log = get_logger(__name__)


@dataclass
class KeyAdmin:
    store: KeyStore
    cache: KeyLookup
    clock: Clock

    async def create(self, ministry: str, label: str | None) -> tuple[str, KeyRecord]:
        full, record = await self.store.create(ministry, self.clock(), label)
        # Audit trail: the key id names the key; the key itself is never logged.
        log.info("api_key_created", key_id=record.key_id, ministry=ministry)
        return full, record

    async def list(self, ministry: str | None) -> list[KeyRecord]:
        return await self.store.list(ministry)

    async def revoke(self, key_id: str) -> KeyRecord | None:
        record = await self.store.revoke(key_id, self.clock())
        self.cache.invalidate(key_id)
        if record is not None:
            log.info("api_key_revoked", key_id=key_id, ministry=record.ministry)
        return record

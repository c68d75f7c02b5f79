"""Ministry API keys in MongoDB (collection ``ingest_api_keys``), stored as SHA-256 hashes only.

`ApiKeyStore` creates, lists and revokes; `KeyCache` serves authentication with an in-process
cache of key records (positive and negative) for ``ttl_s`` seconds, so a revoked key stops working
on every instance within that bound, and at once on the instance that revoked it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from services.ingest.adapters.errors import storage_errors
from services.ingest.domain.keys import KeyRecord, issue_key
from services.ingest.ports import KeyStore
from shared.mongo import MongoClient

API_KEYS = "ingest_api_keys"


def _record(document: dict[str, Any]) -> KeyRecord:
    return KeyRecord(
        key_id=document["_id"],
        ministry=document["ministry"],
        secret_sha256=document["secret_sha256"],
        created_at=document["created_at"],
        revoked_at=document.get("revoked_at"),
        label=document.get("label"),
    )


class ApiKeyStore:
    def __init__(self, client: MongoClient, database: str) -> None:
        self._keys = client[database][API_KEYS]

    async def create(
        self, ministry: str, now: datetime, label: str | None = None
    ) -> tuple[str, KeyRecord]:
        """A new key for the ministry: (the full key, shown once; its stored record)."""
        full, record = issue_key(ministry, now, label)
        with storage_errors():
            await self._keys.insert_one(
                {
                    "_id": record.key_id,
                    "ministry": record.ministry,
                    "secret_sha256": record.secret_sha256,
                    "created_at": record.created_at,
                    "revoked_at": None,
                    "label": label,
                }
            )
        return full, record

    async def get(self, key_id: str) -> KeyRecord | None:
        with storage_errors():
            document = await self._keys.find_one({"_id": key_id})
        return _record(document) if document else None

    async def list(self, ministry: str | None = None) -> list[KeyRecord]:
        query: dict[str, Any] = {"ministry": ministry} if ministry else {}
        with storage_errors():
            records = [_record(d) async for d in self._keys.find(query)]
        return sorted(records, key=lambda r: (r.ministry, r.created_at))

    async def revoke(self, key_id: str, now: datetime) -> KeyRecord | None:
        """Revoke (idempotent: an already revoked key keeps its first revocation time)."""
        record = await self.get(key_id)
        if record is None:
            return None
        if record.revoked_at is None:
            with storage_errors():
                await self._keys.update_one(
                    {"_id": key_id, "revoked_at": None}, {"$set": {"revoked_at": now}}
                )
        return await self.get(key_id)


class KeyCache:
    """Key records by key id, cached for ``ttl_s`` seconds (0 = always read the store)."""

    def __init__(
        self,
        store: KeyStore,
        ttl_s: float,
        monotonic: Callable[[], float] = time.monotonic,
        max_entries: int = 10_000,
    ) -> None:
        self._store = store
        self._ttl_s = ttl_s
        self._monotonic = monotonic
        self._max_entries = max_entries
        self._entries: dict[str, tuple[float, KeyRecord | None]] = {}

    async def get(self, key_id: str) -> KeyRecord | None:
        now = self._monotonic()
        cached = self._entries.get(key_id)
        if cached is not None and now - cached[0] < self._ttl_s:
            return cached[1]
        record = await self._store.get(key_id)
        if self._ttl_s > 0:
            if len(self._entries) >= self._max_entries:
                self._entries.clear()
            self._entries[key_id] = (now, record)
        return record

    def invalidate(self, key_id: str) -> None:
        self._entries.pop(key_id, None)

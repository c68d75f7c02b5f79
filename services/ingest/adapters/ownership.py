"""Ingest's ownership records in MongoDB: shared/catalogue/overrides.py's `OwnershipStore` (the
same collections the catalogue CLI writes), behind the `OwnershipRecords` port, its driver
errors translated and item documents read into `ItemOwnership`."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from services.ingest.adapters.errors import storage_errors
from services.ingest.ports import ItemOwnership
from shared.catalogue.overrides import OwnershipChange, OwnershipStore


class MongoOwnershipRecords:
    def __init__(self, store: OwnershipStore) -> None:
        self._store = store

    async def ensure_indexes(self) -> None:
        await self._store.ensure_indexes()

    async def set_owners(
        self, item_id: str, owners: Sequence[str], *, reason: str, changed_by: str, now: datetime
    ) -> OwnershipChange:
        with storage_errors():
            return await self._store.set_owners(
                item_id, owners, reason=reason, changed_by=changed_by, now=now
            )

    async def reset_owners(
        self, item_id: str, *, reason: str, changed_by: str, now: datetime
    ) -> OwnershipChange:
        with storage_errors():
            return await self._store.reset_owners(
                item_id, reason=reason, changed_by=changed_by, now=now
            )

    async def item(self, item_id: str) -> ItemOwnership:
        with storage_errors():
            item = await self._store.item(item_id)
        owners = list(item.get("ministries") or [])
        return ItemOwnership(
            owners=owners,
            catalogue_owners=list(item.get("catalogue_ministries") or owners),
            basis=list(item.get("owners") or []),
            override=item.get("ownership_override"),
        )

    async def history(self, item_id: str) -> list[OwnershipChange]:
        with storage_errors():
            return await self._store.history(item_id)

    async def unpropagated(self) -> list[OwnershipChange]:
        with storage_errors():
            return await self._store.unpropagated()

    async def mark_propagated(self, change_ids: Sequence[str], now: datetime) -> None:
        with storage_errors():
            await self._store.mark_propagated(change_ids, now)

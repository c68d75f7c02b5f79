"""Ingest's ownership records in MongoDB: shared/catalogue/overrides.py's `OwnershipStore` (the
same collections the catalogue CLI writes), behind the `OwnershipRecords` port, its driver
errors translated and item documents read into `ItemOwnership`."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from pymongo.errors import PyMongoError

from services.ingest.ports import ItemOwnership
from services.ingest.service.errors import StorageUnavailable
from shared.catalogue.overrides import OwnershipChange, OwnershipStore


class MongoOwnershipRecords:
    def __init__(self, store: OwnershipStore) -> None:
        self._store = store

    async def ensure_indexes(self) -> None:
        await self._store.ensure_indexes()

    async def set_owners(
        self, item_id: str, owners: Sequence[str], *, reason: str, changed_by: str, now: datetime
    ) -> OwnershipChange:
        try:
            return await self._store.set_owners(
                item_id, owners, reason=reason, changed_by=changed_by, now=now
            )
        except PyMongoError as error:
            raise StorageUnavailable(repr(error)) from error

    async def reset_owners(
        self, item_id: str, *, reason: str, changed_by: str, now: datetime
    ) -> OwnershipChange:
        try:
            return await self._store.reset_owners(
                item_id, reason=reason, changed_by=changed_by, now=now
            )
        except PyMongoError as error:
            raise StorageUnavailable(repr(error)) from error

    async def item(self, item_id: str) -> ItemOwnership:
        try:
            item = await self._store.item(item_id)
        except PyMongoError as error:
            raise StorageUnavailable(repr(error)) from error
        owners = list(item.get("ministries") or [])
        return ItemOwnership(
            owners=owners,
            catalogue_owners=list(item.get("catalogue_ministries") or owners),
            basis=list(item.get("owners") or []),
            override=item.get("ownership_override"),
        )

    async def history(self, item_id: str) -> list[OwnershipChange]:
        try:
            return await self._store.history(item_id)
        except PyMongoError as error:
            raise StorageUnavailable(repr(error)) from error

    async def unpropagated(self) -> list[OwnershipChange]:
        try:
            return await self._store.unpropagated()
        except PyMongoError as error:
            raise StorageUnavailable(repr(error)) from error

    async def mark_propagated(self, change_ids: Sequence[str], now: datetime) -> None:
        try:
            await self._store.mark_propagated(change_ids, now)
        except PyMongoError as error:
            raise StorageUnavailable(repr(error)) from error

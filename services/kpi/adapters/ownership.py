"""The OwnershipLedger port on kpi's copy of the catalogue: a change ingest published is applied
the way the loader applies an override (shared.catalogue.overrides.OwnershipStore)."""

from __future__ import annotations

from datetime import datetime

from shared.catalogue.overrides import OwnershipChange, OwnershipStore
from shared.events.contracts import ItemOwnersChanged


def change_of(data: ItemOwnersChanged) -> OwnershipChange:
    return OwnershipChange(
        item_id=data.item_id,
        action=data.action,
        owners=list(data.owners),
        previous=[],
        catalogue_owners=[],
        reason=data.reason,
        changed_by=data.changed_by,
        changed_at=data.changed_at,
        change_id=data.change_id,
    )


class MongoOwnershipLedger:
    def __init__(self, store: OwnershipStore) -> None:
        self._store = store

    async def apply_received(self, change: ItemOwnersChanged, now: datetime) -> bool:
        return await self._store.apply_received(change_of(change), now=now)

"""Run-time changes of who may report a KPI or milestone (shared/catalogue/overrides.py), made
through the admin API and published to the kpi service (ownership_propagation.py)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from services.ingest.ports import Catalogue, ItemOwnership, OwnershipRecords
from shared.catalogue.ownership_changes import OwnershipChange
from shared.clock import Clock
from shared.logs import get_logger

log = get_logger(__name__)


class Propagator(Protocol):
    async def publish_pending(self) -> int: ...


@dataclass
class OwnershipAdmin:
    store: OwnershipRecords
    catalogue: Catalogue
    clock: Clock
    # Publishes recorded changes to the kpi service (ownership_propagation.py).
    propagator: Propagator | None = None

    async def set(
        self, item_id: str, owners: Sequence[str], reason: str, changed_by: str
    ) -> OwnershipChange:
        """Raises `UnknownItemError`. Effective at once here, within the catalogue cache TTL on
        every other instance; raises `OwnershipNotPropagated` (the change recorded and in force
        here) when it could not be published to the kpi service yet."""
        change = await self.store.set_owners(
            item_id, owners, reason=reason, changed_by=changed_by, now=self.clock()
        )
        self._log(change)
        await self._propagate()
        return change

    async def reset(self, item_id: str, reason: str, changed_by: str) -> OwnershipChange:
        change = await self.store.reset_owners(
            item_id, reason=reason, changed_by=changed_by, now=self.clock()
        )
        self._log(change)
        await self._propagate()
        return change

    async def _propagate(self) -> None:
        # Published before this instance's cache shows the change: an event it accepts on the
        # new owners' word lands after the change in the item's partition.
        try:
            if self.propagator is not None:
                await self.propagator.publish_pending()
        finally:
            self.catalogue.invalidate()

    async def view(self, item_id: str) -> tuple[ItemOwnership, list[OwnershipChange]]:
        """The item's owners (in force, the release's, the override) and its history."""
        item = await self.store.item(item_id)
        return item, await self.store.history(item_id)

    @staticmethod
    def _log(change: OwnershipChange) -> None:
        # Audit trail beside the history collection.
        log.info(
            "item_owners_changed",
            kpi_id=change.item_id,
            change_id=change.change_id,
            action=change.action,
            owners=change.owners,
            previous=change.previous,
            changed_by=change.changed_by,
            reason=change.reason,
        )

"""Ownership changes reach the kpi service as events: ingest owns the ownership record.

The kpi service keeps its own copy of the catalogue (its database); an ownership change made at
run time (admin API, ``shinchoku catalogue set-owners|reset-owners``) is recorded in ingest's
database only. So every change, once recorded (``propagated_at`` unset), is published to the
events topic as ``shinchoku.item.owners_changed.v1`` and then marked propagated:

- keyed by the item id, exactly as ingest keys the item's ministry events, so it lands in the
  item's partition, ordered before any event of the item accepted after it was published;
- its id is derived from the change id (``owners:<change id>``) and its time is the change's, so
  publishing it again yields the same record: kpi applies each change once;
- changes are published one at a time, oldest first, and the first failure stops the round: a
  change is never published ahead of an earlier one that is not on the topic yet;
- a change the broker did not acknowledge stays unpropagated: the admin API answers 503 (the
  change itself is recorded and in force at ingest), and it is published again by the next
  change, or by the periodic round every ``ownership_publish_interval_s`` (which also publishes
  what the CLI recorded, and, on the first start after an upgrade, changes recorded before
  propagation existed).
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field

from services.ingest.domain.encoding import encode_event
from services.ingest.ports import EventPublisher, OwnershipRecords
from shared.catalogue.ownership_changes import OwnershipChange
from shared.clock import Clock
from shared.events.contracts import (
    ItemOwnersChanged,
    ItemOwnersChangedEvent,
    new_owners_changed_event,
)
from shared.events.kafka_binding import EncodedRecord
from shared.logs import get_logger

log = get_logger(__name__)


class OwnershipNotPropagated(Exception):  # noqa: N818 - reads as the condition it reports
    """The change is recorded (and in force at ingest) but not on the events topic yet."""

    def __init__(self, change_id: str, error: BaseException) -> None:
        super().__init__(f"change {change_id} not published: {error}")
        self.change_id = change_id
        self.error = error


def owners_changed_event(change: OwnershipChange) -> ItemOwnersChangedEvent:
    """The event of a recorded change: the same event however often it is built."""
    return new_owners_changed_event(
        ItemOwnersChanged(
            item_id=change.item_id,
            action="reset" if change.action == "reset" else "set",
            owners=change.owners,
            change_id=change.change_id,
            reason=change.reason,
            changed_by=change.changed_by,
            changed_at=change.changed_at,
        ),
        time=change.changed_at,
    )


def owners_changed_record(change: OwnershipChange) -> EncodedRecord:
    """Its record: keyed by the item id, as the item's ministry events are."""
    return encode_event(owners_changed_event(change), change.item_id)


@dataclass
class OwnershipPropagator:
    store: OwnershipRecords
    publisher: EventPublisher
    clock: Clock
    # One round at a time in this process (another instance may publish the same change too:
    # kpi recognises it by its id).
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock, init=False)

    async def publish_pending(self) -> int:
        """Publish every recorded change not yet on the topic, oldest first; the number
        published. Raises `OwnershipNotPropagated` at the first the broker did not acknowledge."""
        async with self._lock:
            published = 0
            for change in await self.store.unpropagated():
                (error,) = await self.publisher.publish_many([owners_changed_record(change)])
                if error is not None:
                    log.warning(
                        "item_owners_change_not_published",
                        kpi_id=change.item_id,
                        change_id=change.change_id,
                        error=repr(error),
                    )
                    raise OwnershipNotPropagated(change.change_id, error)
                await self.store.mark_propagated([change.change_id], self.clock())
                published += 1
                log.info(
                    "item_owners_change_published",
                    kpi_id=change.item_id,
                    change_id=change.change_id,
                    action=change.action,
                    owners=change.owners,
                )
            return published

    async def round(self) -> bool:
        """One periodic round (shared.tasks.run_periodically): never busy-loops on a failure."""
        # A failure is logged; the next round tries again.
        with contextlib.suppress(OwnershipNotPropagated):
            await self.publish_pending()
        return False

"""Run-time ownership changes, applied to the kpi service's own copy of the catalogue.

Ingest owns the ownership record (shared.catalogue.overrides) and publishes each change as a
``shinchoku.item.owners_changed.v1`` event on the events topic, keyed by the item id
(services/ingest/ownership_sync.py). This handler applies it to kpi's database the way the
loader applies an override (`OwnershipStore.apply_received`: the same item document as in
ingest's copy) and then to the definitions the handler caches (`KpiHandler.redefine`), so the
item's later events are evaluated, and its status changes published, with the new owners, and
its state (metrics by ministry, scorecards) carries them.

Order: the runner hands an ownership change over after the records that precede it in its
partition and before those that follow (``ordered_types``): an event ingest accepted on the new
owners' word is judged with them. Idempotent by change id (a change published twice is applied
once).

Trust: a change is accepted only from ``/services/ingest`` and only in a record keyed by its
item. The broker lets only ingest (and ministries explicitly granted direct writes) write the
events topic; a granted ministry could still forge this type with ingest's source, which kpi
cannot tell from the record: see docs/contracts/README.md ("Ownership changes").
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

import structlog

from shared.catalogue.overrides import OwnershipChange, OwnershipStore
from shared.consumer import Rejection, arrival_of
from shared.events.cloudevents import CloudEvent
from shared.events.contracts import INGEST_SOURCE, ItemOwnersChanged, owners_changed_event_id

log = structlog.stdlib.get_logger("kpi.ownership")

UNTRUSTED_SOURCE = "untrusted_source"
KEY_MISMATCH = "partition_key_mismatch"
INCONSISTENT = "inconsistent_event"


def verdict(event: CloudEvent) -> Rejection | None:
    """Why an ownership change cannot be applied, or None: it must come from ingest, name its
    item as subject, carry the id derived from its change, and (when read from Kafka) be keyed
    by the item, so it is ordered among the item's events."""
    data = event.data
    assert isinstance(data, ItemOwnersChanged)
    if event.source != INGEST_SOURCE:
        return Rejection(
            event,
            UNTRUSTED_SOURCE,
            f"ownership changes are accepted from {INGEST_SOURCE} only, not {event.source!r}",
        )
    if event.subject != data.item_id or event.id != owners_changed_event_id(data.change_id):
        return Rejection(
            event,
            INCONSISTENT,
            f"subject {event.subject!r} and id {event.id!r} must be the item "
            f"{data.item_id!r} and {owners_changed_event_id(data.change_id)!r}",
        )
    arrival = arrival_of(event)
    if arrival is not None and arrival.key != data.item_id.encode():
        return Rejection(
            event,
            KEY_MISMATCH,
            f"the record key {arrival.key!r} is not the item id {data.item_id!r}: a change must "
            "share the item's partition to be ordered among its events",
        )
    return None


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


@dataclass
class OwnershipChanges:
    """The consumer's handler for ``shinchoku.item.owners_changed.v1``."""

    store: OwnershipStore
    # The definitions the kpi handler caches: re-read for these items (KpiHandler.redefine).
    redefine: Callable[[Sequence[str]], Awaitable[None]]
    clock: Callable[[], datetime]

    async def on_owners_changed(self, events: Sequence[CloudEvent]) -> Sequence[Rejection]:
        rejections: list[Rejection] = []
        changed: list[str] = []
        for event in events:  # in partition order: a later change of one item wins
            rejection = verdict(event)
            if rejection is not None:
                rejections.append(rejection)
                continue
            assert isinstance(event.data, ItemOwnersChanged)
            data = event.data
            applied = await self.store.apply_received(change_of(data), now=self.clock())
            log.info(
                "item_owners_applied" if applied else "item_owners_already_applied",
                kpi_id=data.item_id,
                change_id=data.change_id,
                action=data.action,
                owners=data.owners,
                event_id=event.id,
            )
            # Redefined even when applied before: a crash may have come between the two.
            if data.item_id not in changed:
                changed.append(data.item_id)
        if changed:
            await self.redefine(changed)
        return rejections

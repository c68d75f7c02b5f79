"""Run-time ownership changes: who may report a KPI or milestone, changed without a release.

The plan catalogue (plan-2022.yaml) says who owns each item and why. Real work sometimes
differs (a ministry reorganises, a task moves between agencies): an operator then changes an
item's owners through the ingest admin API or ``shinchoku catalogue set-owners``, with a reason
and a name. Three collections hold it, in the database the catalogue is loaded into:

- ``catalogue_owner_overrides``: one document per overridden item, ``_id`` = the item id, with
  ``owners`` (ministry codes), ``reason``, ``changed_by``, ``changed_at``;
- ``catalogue_ownership_changes``: the history, one document per change (``set`` or
  ``reset``), never edited or deleted: ``item_id``, ``action``, ``owners`` (after),
  ``previous`` (before), ``catalogue_owners`` (what the release says), ``reason``,
  ``changed_by``, ``changed_at``;
- ``catalogue_items`` itself: an overridden item's ``ministries`` are the override's, its
  ``catalogue_ministries`` what the release says, and ``ownership_override`` the override
  (reason, who, when). Every reader (ingest's ownership check, the kpi service's ministry
  labels, alerts' filters) sees the owners in force without knowing about overrides.

Propagation to the kpi service (which keeps its own copy of the catalogue, in its own
database): ingest owns the ownership record. Each change is recorded here first, unpropagated
(``propagated_at`` unset); ingest then publishes it as a ``shinchoku.item.owners_changed.v1``
event keyed by the item id (its id derived from the change's, so publishing again is the same
event) and marks it propagated. kpi applies it to its copy with `apply_received`, once per
change id, in the item's partition order. Changes recorded before propagation existed have no
``propagated_at`` and are published on ingest's next start.

Reconciliation with ``shinchoku catalogue load``: the run-time override wins. The loader
applies every override to the item documents it writes (`apply_override`), so a reload never
silently undoes one, and reports each override with the release's owners beside it (a
divergence the operator can resolve by releasing the change in the catalogue and resetting the
override, or by keeping it). Resetting (`reset_owners`) returns the item to the release's owners.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from bson import ObjectId
from pymongo import ASCENDING
from pymongo.asynchronous.database import AsyncDatabase

from shared.catalogue.ownership_changes import OwnershipChange, UnknownItemError, iso_time
from shared.catalogue_store import ITEMS

__all__ = [
    "CHANGES",
    "OVERRIDES",
    "OwnershipChange",
    "OwnershipStore",
    "UnknownItemError",
    "apply_override",
    "read_overrides",
    "release_content",
]

OVERRIDES = "catalogue_owner_overrides"
CHANGES = "catalogue_ownership_changes"

Document = dict[str, Any]

# Fields an override adds to an item document (stripped to recover the release's content).
OVERRIDE_FIELDS = ("catalogue_ministries", "ownership_override")


def release_content(item: Mapping[str, Any]) -> Document:
    """An item document as the catalogue release wrote it: any override undone."""
    content = {k: v for k, v in item.items() if k not in OVERRIDE_FIELDS}
    if "catalogue_ministries" in item:
        content["ministries"] = list(item["catalogue_ministries"])
    return content


def apply_override(item: Mapping[str, Any], override: Mapping[str, Any]) -> Document:
    """The item document with `override`'s owners in force (`item` as the release wrote it)."""
    return {
        **item,
        "ministries": list(override["owners"]),
        "catalogue_ministries": list(item.get("ministries") or []),
        "ownership_override": {
            "owners": list(override["owners"]),
            "reason": override["reason"],
            "changed_by": override["changed_by"],
            "changed_at": iso_time(override["changed_at"]),
        },
    }


async def read_overrides(db: AsyncDatabase[Document]) -> dict[str, Document]:
    """Every override in force in `db`, by item id."""
    return {doc["_id"]: doc async for doc in db[OVERRIDES].find({})}


def _change_key(change_id: str) -> Any:
    """The `_id` of a change document: ingest's are ObjectIds, kpi's received ones strings."""
    return ObjectId(change_id) if ObjectId.is_valid(change_id) else change_id


def _change_of(doc: Mapping[str, Any]) -> OwnershipChange:
    """The record of a change document (its ``_id`` becomes the change id)."""
    changed_at = doc["changed_at"]
    if changed_at.tzinfo is None:
        changed_at = changed_at.replace(tzinfo=UTC)
    return OwnershipChange(
        item_id=doc["item_id"],
        action=doc["action"],
        owners=list(doc["owners"]),
        previous=list(doc["previous"]),
        catalogue_owners=list(doc["catalogue_owners"]),
        reason=doc["reason"],
        changed_by=doc["changed_by"],
        changed_at=changed_at,
        change_id=str(doc["_id"]),
    )


def _dedupe(codes: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(codes))


class OwnershipStore:
    """Set, reset and list ownership overrides in one catalogue database."""

    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._db = db

    async def ensure_indexes(self) -> None:
        await self._db[CHANGES].create_index([("item_id", ASCENDING), ("changed_at", ASCENDING)])

    async def overrides(self) -> dict[str, Document]:
        return await read_overrides(self._db)

    async def unpropagated(self) -> list[OwnershipChange]:
        """Changes recorded but not yet published, oldest first (the order to publish in)."""
        cursor = (
            self._db[CHANGES]
            .find({"propagated_at": None})
            .sort([("changed_at", ASCENDING), ("_id", ASCENDING)])
        )
        return [_change_of(doc) async for doc in cursor]

    async def mark_propagated(self, change_ids: Sequence[str], now: datetime) -> None:
        if change_ids:
            await self._db[CHANGES].update_many(
                {"_id": {"$in": [_change_key(c) for c in change_ids]}},
                {"$set": {"propagated_at": now}},
            )

    async def apply_received(self, change: OwnershipChange, *, now: datetime) -> bool:
        """Apply a change published by the database that owns the record (ingest's) to this
        copy of the catalogue (kpi's): the same override, the same item document as there.
        Idempotent by change id: False when this change was applied already. An item this copy
        does not hold keeps the override for when it is loaded."""
        if await self._db[CHANGES].find_one({"_id": change.change_id}, {"_id": 1}) is not None:
            return False
        item = await self._db[ITEMS].find_one({"_id": change.item_id})
        release = release_content(item) if item is not None else {}
        if change.action == "set":
            override = {
                "owners": _dedupe(change.owners),
                "reason": change.reason,
                "changed_by": change.changed_by,
                "changed_at": change.changed_at,
            }
            await self._db[OVERRIDES].replace_one({"_id": change.item_id}, override, upsert=True)
            if item is not None:
                await self._write_item(item, apply_override(release, override))
        else:
            await self._db[OVERRIDES].delete_one({"_id": change.item_id})
            if item is not None:
                await self._write_item(item, release)
        # Recorded last: a crash before this applies the same change again on redelivery.
        await self._db[CHANGES].insert_one(
            {
                "_id": change.change_id,
                "item_id": change.item_id,
                "action": change.action,
                "owners": list(change.owners),
                "previous": list((item or {}).get("ministries") or []),
                "catalogue_owners": list(release.get("ministries") or []),
                "reason": change.reason,
                "changed_by": change.changed_by,
                "changed_at": change.changed_at,
                "received_at": now,
            }
        )
        return True

    async def history(self, item_id: str) -> list[OwnershipChange]:
        cursor = self._db[CHANGES].find({"item_id": item_id}).sort("changed_at", ASCENDING)
        return [_change_of(doc) async for doc in cursor]

    async def item(self, item_id: str) -> Document:
        found = await self._db[ITEMS].find_one({"_id": item_id})
        if found is None:
            raise UnknownItemError(item_id)
        return found

    async def set_owners(
        self,
        item_id: str,
        owners: Sequence[str],
        *,
        reason: str,
        changed_by: str,
        now: datetime,
    ) -> OwnershipChange:
        """Make `owners` the item's owners until reset; recorded with reason, who and when."""
        codes = _dedupe(owners)
        if not codes:
            raise ValueError("an item needs at least one owner")
        item = await self.item(item_id)
        release = release_content(item)
        override = {"owners": codes, "reason": reason, "changed_by": changed_by, "changed_at": now}
        await self._db[OVERRIDES].replace_one({"_id": item_id}, override, upsert=True)
        await self._write_item(item, apply_override(release, override))
        return await self._record(item_id, "set", codes, item, release, reason, changed_by, now)

    async def reset_owners(
        self, item_id: str, *, reason: str, changed_by: str, now: datetime
    ) -> OwnershipChange:
        """Back to the release's owners (a no-op change is still recorded)."""
        item = await self.item(item_id)
        release = release_content(item)
        await self._db[OVERRIDES].delete_one({"_id": item_id})
        await self._write_item(item, release)
        owners = list(release.get("ministries") or [])
        return await self._record(item_id, "reset", owners, item, release, reason, changed_by, now)

    async def _write_item(self, old: Mapping[str, Any], content: Document) -> None:
        # Imported here: the loader imports this module for `apply_override`.
        from shared.catalogue.loader import METADATA_FIELDS, content_hash

        stored = {k: v for k, v in content.items() if k not in METADATA_FIELDS}
        metadata = {k: v for k, v in old.items() if k in METADATA_FIELDS}
        metadata["content_hash"] = content_hash(stored)
        await self._db[ITEMS].replace_one({"_id": old["_id"]}, {**stored, **metadata})

    async def _record(
        self,
        item_id: str,
        action: str,
        owners: list[str],
        before: Mapping[str, Any],
        release: Mapping[str, Any],
        reason: str,
        changed_by: str,
        now: datetime,
    ) -> OwnershipChange:
        doc_id = ObjectId()
        change = OwnershipChange(
            change_id=str(doc_id),
            item_id=item_id,
            action=action,
            owners=owners,
            previous=list(before.get("ministries") or []),
            catalogue_owners=list(release.get("ministries") or []),
            reason=reason,
            changed_by=changed_by,
            changed_at=now,
        )
        await self._db[CHANGES].insert_one(
            {
                "_id": doc_id,
                "item_id": item_id,
                "action": action,
                "owners": change.owners,
                "previous": change.previous,
                "catalogue_owners": change.catalogue_owners,
                "reason": reason,
                "changed_by": changed_by,
                "changed_at": now,
                # Set once the change is on the events topic (services/ingest publishes it).
                "propagated_at": None,
            }
        )
        return change

"""Notifications in MongoDB: the archive, the live (pending) set and each one's fate."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from pymongo.asynchronous.database import AsyncDatabase

from services.alerts.adapters.mongo import MEMBERSHIPS, NOTIFICATIONS, PENDING, by_ids, insert_new
from services.alerts.ports import Document


class MongoNotifications:
    """The notification archive (insert-only: dedup by key), the live set of pending
    notifications, and each notification's fate (insert-only: in delivery X, or dropped)."""

    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._archive = db[NOTIFICATIONS]
        self._pending = db[PENDING]
        self._fates = db[MEMBERSHIPS]

    async def insert_new(self, documents: Sequence[Document]) -> list[Document]:
        """Record notifications, skipping keys already recorded; returns the new ones. Those
        `waiting` or `muted` join the live set. A key recorded by a handler that stopped
        before adding it to the live set (a crash between the two inserts) is added now, when
        the change is redelivered, so nothing is lost."""
        new = await insert_new(self._archive, documents)
        new_ids = {doc["_id"] for doc in new}
        repeated = [doc["_id"] for doc in documents if doc["_id"] not in new_ids]
        live = [
            d
            for d in await by_ids(self._archive, repeated)
            if d.get("state") in ("waiting", "muted")
        ]
        if live:
            decided = {f["_id"] for f in await by_ids(self._fates, (d["_id"] for d in live))}
            live = [d for d in live if d["_id"] not in decided]
        fresh = [d for d in new if d.get("state") in ("waiting", "muted")]
        await insert_new(self._pending, [*fresh, *live])
        return new

    async def get(self, notification_id: str) -> Document | None:
        return await self._archive.find_one({"_id": notification_id})

    async def waiting(self, subscription_ids: Iterable[str] | None = None) -> list[Document]:
        query: Document = {"state": "waiting"}
        if subscription_ids is not None:
            query["subscription_id"] = {"$in": list(set(subscription_ids))}
        return [doc async for doc in self._pending.find(query)]

    async def mute(
        self, notification_id: str, *, until: datetime, by: list[str], now: datetime
    ) -> bool:
        fields = {
            "state": "muted",
            "muted_until": until,
            "muted_by": by,
            "muted_at": now,
            "updated_at": now,
        }
        result = await self._pending.update_one(
            {"_id": notification_id, "state": {"$in": ["waiting", "muted"]}}, {"$set": fields}
        )
        return result.modified_count == 1

    async def muted_due(self, now: datetime) -> list[Document]:
        query = {"state": "muted", "muted_until": {"$lte": now}}
        return [doc async for doc in self._pending.find(query)]

    async def end_mutes_by(self, silence_id: str, now: datetime) -> int:
        """A silence ended early: what it muted is re-examined now."""
        result = await self._pending.update_many(
            {"state": "muted", "muted_by": silence_id}, {"$set": {"muted_until": now}}
        )
        return result.modified_count

    async def release(self, notification_id: str, now: datetime) -> bool:
        fields = {
            "state": "waiting",
            "immediate": True,
            "arrived_at": now,
            "released_at": now,
            "updated_at": now,
        }
        result = await self._pending.update_one(
            {"_id": notification_id, "state": "muted"}, {"$set": fields}
        )
        return result.modified_count == 1

    async def drop(self, notification_id: str, reason: str, now: datetime) -> bool:
        """No longer relevant: its fate is 'dropped' (unless a delivery took it first)."""
        fate = {"_id": notification_id, "delivery_id": None, "dropped": reason, "at": now}
        if not await insert_new(self._fates, [fate]):
            return False
        await self._pending.delete_one({"_id": notification_id})
        return True

    async def claim(
        self, documents: Sequence[Document], delivery_id: str, now: datetime
    ) -> list[Document]:
        """Take pending notifications into the delivery `delivery_id`; returns those taken.

        Each notification's fate is an insert keyed by the notification's id, so when
        instances race, each notification goes to exactly one delivery (or is dropped).
        """
        fates = [{"_id": d["_id"], "delivery_id": delivery_id, "at": now} for d in documents]
        won_ids = {f["_id"] for f in await insert_new(self._fates, fates)}
        won = [d for d in documents if d["_id"] in won_ids]
        if won:
            await self._pending.update_many(
                {"_id": {"$in": sorted(won_ids)}},
                {"$set": {"state": "claimed", "delivery_id": delivery_id, "claimed_at": now}},
            )
        return won

    async def adopt_orphans(self, ids: Sequence[str], before: datetime) -> int:
        """Waiting notifications that already have a fate older than `before` belong to a
        delivery whose creator stopped half-way (or were dropped): settle them (recovery)."""
        adopted = 0
        for fate in await by_ids(self._fates, ids):
            if fate["at"] > before:
                continue
            if fate.get("delivery_id") is None:
                dropped = await self._pending.delete_one({"_id": fate["_id"]})
                adopted += dropped.deleted_count
                continue
            result = await self._pending.update_one(
                {"_id": fate["_id"], "state": "waiting"},
                {
                    "$set": {
                        "state": "claimed",
                        "delivery_id": fate["delivery_id"],
                        "claimed_at": fate["at"],
                    }
                },
            )
            adopted += result.modified_count
        return adopted

    async def in_delivery(self, delivery_id: str) -> list[Document]:
        return [doc async for doc in self._pending.find({"delivery_id": delivery_id})]

    async def stale_claims(self, before: datetime) -> list[Document]:
        query = {"state": "claimed", "claimed_at": {"$lte": before}}
        return [doc async for doc in self._pending.find(query)]

    async def mark_batched(self, ids: Sequence[str]) -> None:
        """The delivery exists: the notifications leave the live set."""
        await self._pending.delete_many({"_id": {"$in": list(ids)}})

    async def for_subscription(
        self, subscription_id: str, *, state: str | None, limit: int | None
    ) -> list[Document]:
        """The subscription's notifications, newest first, with their current state (from the
        live set, their fate, or the archive). An admin query: it scans."""
        query: Document = {"subscription_id": subscription_id}
        archived = [
            doc async for doc in self._archive.find(query).sort([("created_at", -1), ("_id", 1)])
        ]
        live = {doc["_id"]: doc async for doc in self._pending.find(query)}
        ids = {doc["_id"] for doc in archived}
        fates = {f["_id"]: f async for f in self._fates.find({}) if f["_id"] in ids}
        result = []
        for doc in archived:
            current = {**doc, **live.get(doc["_id"], {})}
            fate = fates.get(doc["_id"])
            if doc["_id"] not in live and fate is not None:
                if fate.get("delivery_id") is None:
                    current.update(state="dropped", dropped_reason=fate.get("dropped"))
                else:
                    current.update(state="batched", delivery_id=fate["delivery_id"])
            if state is None or current["state"] == state:
                result.append(current)
            if limit is not None and len(result) >= limit:
                break
        return result

    async def count_by_state(self) -> dict[str, int]:
        cursor = await self._pending.aggregate([{"$group": {"_id": "$state", "n": {"$sum": 1}}}])
        return {doc["_id"]: int(doc["n"]) async for doc in cursor}

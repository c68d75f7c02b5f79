"""MongoDB persistence of subscriptions, the delivery queue and the delivery log.

The queue's documents are keyed by the notification's dedup key, so a status change redelivered
by Kafka cannot enqueue a second notification. Workers lease a due delivery atomically with
``find_one_and_update`` so two instances never send the same attempt.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from typing import Any

from pymongo import ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError

SUBSCRIPTIONS = "alerts_subscriptions"
DELIVERIES = "alerts_deliveries"
ATTEMPTS = "alerts_attempts"

Document = dict[str, Any]


def message_id_for(notification_key: str) -> str:
    """The `webhook-id`: stable for a notification across retries and restarts."""
    return "msg_" + hashlib.sha256(notification_key.encode()).hexdigest()[:26]


async def ensure_indexes(db: AsyncDatabase[Document]) -> None:
    await db[DELIVERIES].create_index([("state", 1), ("next_attempt_at", 1)])
    await db[DELIVERIES].create_index([("subscription_id", 1), ("created_at", -1)])
    await db[ATTEMPTS].create_index([("subscription_id", 1), ("at", -1)])
    await db[SUBSCRIPTIONS].create_index([("state", 1)])


class SubscriptionStore:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._subscriptions = db[SUBSCRIPTIONS]

    async def insert(self, document: Document) -> None:
        await self._subscriptions.insert_one(document)

    async def get(self, subscription_id: str) -> Document | None:
        return await self._subscriptions.find_one({"_id": subscription_id})

    async def list(self, limit: int, offset: int) -> list[Document]:
        cursor = self._subscriptions.find({}).sort("created_at", 1).skip(offset).limit(limit)
        return [doc async for doc in cursor]

    async def active(self) -> list[Document]:
        return [doc async for doc in self._subscriptions.find({"state": "active"})]

    async def delete(self, subscription_id: str) -> bool:
        result = await self._subscriptions.delete_one({"_id": subscription_id})
        return result.deleted_count == 1

    async def set_state(self, subscription_id: str, state: str, reason: str | None = None) -> None:
        await self._subscriptions.update_one(
            {"_id": subscription_id}, {"$set": {"state": state, "state_reason": reason}}
        )


class DeliveryQueue:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._deliveries = db[DELIVERIES]
        self._attempts = db[ATTEMPTS]

    async def enqueue(self, documents: list[Document]) -> int:
        """Insert new notifications, skipping ones already queued (same key); returns the count."""
        if not documents:
            return 0
        try:
            result = await self._deliveries.insert_many(documents, ordered=False)
            return len(result.inserted_ids)
        except BulkWriteError as error:
            if any(e.get("code") != 11000 for e in error.details.get("writeErrors", [])):
                raise
            return int(error.details.get("nInserted", 0))

    async def lease_due(self, now: datetime, lease: timedelta, owner: str) -> Document | None:
        return await self._deliveries.find_one_and_update(
            {
                "state": "pending",
                "next_attempt_at": {"$lte": now},
                "lease_until": {"$lte": now},
            },
            {"$set": {"lease_until": now + lease, "lease_owner": owner}},
            sort=[("next_attempt_at", 1)],
            return_document=ReturnDocument.AFTER,
        )

    async def record_attempt(self, delivery: Document, attempt: Document, update: Document) -> None:
        await self._attempts.insert_one(attempt)
        await self._deliveries.update_one(
            {"_id": delivery["_id"], "lease_owner": delivery["lease_owner"]}, {"$set": update}
        )

    async def get(self, delivery_id: str) -> Document | None:
        return await self._deliveries.find_one({"_id": delivery_id})

    async def attempts(self, subscription_id: str, limit: int) -> list[Document]:
        cursor = self._attempts.find({"subscription_id": subscription_id}).sort("at", -1)
        return [doc async for doc in cursor.limit(limit)]

    async def count_by_state(self) -> dict[str, int]:
        pipeline = [{"$group": {"_id": "$state", "n": {"$sum": 1}}}]
        cursor = await self._deliveries.aggregate(pipeline)
        return {doc["_id"]: int(doc["n"]) async for doc in cursor}

"""Subscriptions in MongoDB (`alerts_subscriptions`: target, filter, secrets, state)."""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from datetime import datetime

from pymongo import ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase

from services.alerts.adapters.mongo import SUBSCRIPTIONS
from services.alerts.adapters.subscription_documents import (
    edit_fields,
    secret_document,
    subscription_document,
    subscription_from_document,
)
from services.alerts.ports import (
    Document,
    SigningSecret,
    Subscription,
    SubscriptionEdit,
    SubscriptionState,
)


def _record(doc: Document | None) -> Subscription | None:
    return None if doc is None else subscription_from_document(doc)


class MongoSubscriptions:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._c = db[SUBSCRIPTIONS]

    async def insert(self, subscription: Subscription) -> None:
        await self._c.insert_one(subscription_document(subscription))

    async def get(self, subscription_id: str) -> Subscription | None:
        return _record(await self._c.find_one({"_id": subscription_id}))

    async def list(
        self, *, limit: int, offset: int, state: str | None = None
    ) -> builtins.list[Subscription]:
        query: Document = {} if state is None else {"state": state}
        cursor = self._c.find(query).sort([("created_at", 1), ("_id", 1)])
        return [subscription_from_document(doc) async for doc in cursor.skip(offset).limit(limit)]

    async def count(self, *, state: str | None = None) -> int:
        return await self._c.count_documents({} if state is None else {"state": state})

    async def active(self) -> builtins.list[Subscription]:
        return [subscription_from_document(doc) async for doc in self._c.find({"state": "active"})]

    async def update(
        self, subscription_id: str, edit: SubscriptionEdit, now: datetime
    ) -> Subscription | None:
        fields = {**edit_fields(edit), "updated_at": now}
        return _record(
            await self._c.find_one_and_update(
                {"_id": subscription_id}, {"$set": fields}, return_document=ReturnDocument.AFTER
            )
        )

    async def replace_secrets(
        self,
        subscription_id: str,
        version: int,
        secrets_: Sequence[SigningSecret],
        now: datetime,
    ) -> Subscription | None:
        """Optimistic: None when another rotation changed the secrets since `version`."""
        stored = [secret_document(s) for s in secrets_]
        return _record(
            await self._c.find_one_and_update(
                {"_id": subscription_id, "secrets_version": version},
                {"$set": {"secrets": stored, "secrets_version": version + 1, "updated_at": now}},
                return_document=ReturnDocument.AFTER,
            )
        )

    async def set_state(
        self,
        subscription_id: str,
        state: SubscriptionState,
        *,
        reason: str | None,
        now: datetime,
        only_from: Sequence[SubscriptionState] | None = None,
        healthy: bool = False,
        disabled_at: datetime | None = None,
    ) -> bool:
        """Move to `state` (only from `only_from` states when given); True when it moved."""
        query: Document = {"_id": subscription_id}
        if only_from is not None:
            query["state"] = {"$in": list(only_from)}
        fields: Document = {"state": state, "state_reason": reason, "updated_at": now}
        if healthy:
            fields["failing_since"] = None
        if disabled_at is not None:
            fields["disabled_at"] = disabled_at
        result = await self._c.update_one(query, {"$set": fields})
        return result.modified_count == 1

    async def mark_failing(self, subscription_id: str, since: datetime) -> None:
        await self._c.update_one(
            {"_id": subscription_id, "failing_since": None}, {"$set": {"failing_since": since}}
        )

    async def mark_healthy(self, subscription_id: str) -> None:
        await self._c.update_one(
            {"_id": subscription_id, "failing_since": {"$ne": None}},
            {"$set": {"failing_since": None}},
        )

    async def delete(self, subscription_id: str) -> bool:
        result = await self._c.delete_one({"_id": subscription_id})
        return result.deleted_count == 1

    async def count_by_state(self) -> dict[str, int]:
        cursor = await self._c.aggregate([{"$group": {"_id": "$state", "n": {"$sum": 1}}}])
        return {doc["_id"]: int(doc["n"]) async for doc in cursor}

"""Silences in MongoDB (`alerts_silences`; ended ones are kept as history)."""

from __future__ import annotations

import builtins
from datetime import datetime, timedelta

from pymongo.asynchronous.database import AsyncDatabase

from services.alerts.adapters.mongo import SILENCES
from services.alerts.ports import Document


class MongoSilences:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._c = db[SILENCES]

    async def insert(self, document: Document) -> None:
        await self._c.insert_one(document)

    async def get(self, silence_id: str) -> Document | None:
        return await self._c.find_one({"_id": silence_id})

    async def list(
        self, *, in_force_at: datetime | None, limit: int, offset: int = 0
    ) -> builtins.list[Document]:
        query = self._in_force(in_force_at)
        cursor = self._c.find(query).sort([("created_at", -1), ("_id", 1)])
        return [doc async for doc in cursor.skip(offset).limit(limit)]

    async def count(self, *, in_force_at: datetime | None) -> int:
        return await self._c.count_documents(self._in_force(in_force_at))

    @staticmethod
    def _in_force(at: datetime | None) -> Document:
        return {} if at is None else {"$or": [{"ends_at": None}, {"ends_at": {"$gt": at}}]}

    async def end(self, silence_id: str, now: datetime) -> Document | None:
        """End a silence now (kept as history): ends_at becomes now unless already past."""
        doc = await self._c.find_one({"_id": silence_id})
        if doc is None:
            return None
        if doc.get("ends_at") is None or doc["ends_at"] > now:
            starts_at = doc.get("starts_at")
            fields: Document = {"ends_at": now, "ended_early_at": now}
            if starts_at is not None and starts_at >= now:
                fields["starts_at"] = now - timedelta(milliseconds=1)
            await self._c.update_one({"_id": silence_id}, {"$set": fields})
            doc.update(fields)
        return doc

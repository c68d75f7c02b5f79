"""Silences in MongoDB (`alerts_silences`; ended ones are kept as history)."""

from __future__ import annotations

import builtins
from datetime import datetime

from pymongo.asynchronous.database import AsyncDatabase

from services.alerts.adapters.mongo import SILENCES
from services.alerts.adapters.silence_documents import (
    ending,
    silence_document,
    silence_from_document,
)
from services.alerts.ports import Document, SilenceRecord


class MongoSilences:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._c = db[SILENCES]

    async def insert(self, record: SilenceRecord) -> None:
        await self._c.insert_one(silence_document(record))

    async def get(self, silence_id: str) -> SilenceRecord | None:
        doc = await self._c.find_one({"_id": silence_id})
        return None if doc is None else silence_from_document(doc)

    async def list(
        self, *, in_force_at: datetime | None, limit: int, offset: int = 0
    ) -> builtins.list[SilenceRecord]:
        query = self._in_force(in_force_at)
        cursor = self._c.find(query).sort([("created_at", -1), ("_id", 1)])
        return [silence_from_document(doc) async for doc in cursor.skip(offset).limit(limit)]

    async def count(self, *, in_force_at: datetime | None) -> int:
        return await self._c.count_documents(self._in_force(in_force_at))

    @staticmethod
    def _in_force(at: datetime | None) -> Document:
        return {} if at is None else {"$or": [{"ends_at": None}, {"ends_at": {"$gt": at}}]}

    async def end(self, silence_id: str, now: datetime) -> SilenceRecord | None:
        doc = await self._c.find_one({"_id": silence_id})
        if doc is None:
            return None
        fields = ending(silence_from_document(doc).silence, now)
        if fields is not None:
            await self._c.update_one({"_id": silence_id}, {"$set": fields})
            doc.update(fields)
        return silence_from_document(doc)

"""MongoDB persistence of the kpi service: raw observations, per-subject state with an outbox.

- ``kpi_observations``: every KPI observation and milestone report, ``_id`` = CloudEvents
  source + id, so a redelivered or resent event is stored once (history for ``as_of`` queries and
  replay checks).
- ``kpi_states``: one document per KPI/milestone: the engine's bounded aggregate, the episode,
  the latest evaluation, and an ``outbox`` of status changes not yet acknowledged by Kafka.
- ``kpi_transitions``: every status change (the open-data export), ``_id`` = status event id.
"""

from __future__ import annotations

from typing import Any

from pymongo import ReplaceOne
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError

from shared.mongo import bulk_write_chunked

OBSERVATIONS = "kpi_observations"
STATES = "kpi_states"
TRANSITIONS = "kpi_transitions"
ASSESSMENTS = "kpi_assessments"

Document = dict[str, Any]


async def ensure_indexes(db: AsyncDatabase[Document]) -> None:
    await db[OBSERVATIONS].create_index([("subject_id", 1), ("as_of", 1)])
    await db[STATES].create_index([("has_outbox", 1)])
    await db[STATES].create_index([("measure_id", 1)])
    await db[TRANSITIONS].create_index([("subject_id", 1), ("seq", 1)])
    await db[ASSESSMENTS].create_index([("measure_id", 1), ("as_of", -1)])


class KpiRepository:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._db = db

    async def store_observations(self, documents: list[Document]) -> None:
        """Insert raw events; ones already stored (same source + id) are ignored."""
        await self._insert_ignoring_duplicates(OBSERVATIONS, documents)

    async def store_assessments(self, documents: list[Document]) -> None:
        await self._insert_ignoring_duplicates(ASSESSMENTS, documents)

    async def _insert_ignoring_duplicates(self, collection: str, documents: list[Document]) -> None:
        if not documents:
            return
        try:
            await self._db[collection].insert_many(documents, ordered=False)
        except BulkWriteError as error:
            if any(e.get("code") != 11000 for e in error.details.get("writeErrors", [])):
                raise

    async def load_states(self, subject_ids: list[str]) -> dict[str, Document]:
        cursor = self._db[STATES].find({"_id": {"$in": subject_ids}})
        return {doc["_id"]: doc async for doc in cursor}

    async def all_states(self) -> list[Document]:
        return [doc async for doc in self._db[STATES].find({})]

    async def states_with_outbox(self) -> list[Document]:
        return [doc async for doc in self._db[STATES].find({"has_outbox": True})]

    async def save_states(self, documents: list[Document]) -> None:
        if documents:
            await bulk_write_chunked(
                self._db[STATES], [ReplaceOne({"_id": d["_id"]}, d, upsert=True) for d in documents]
            )

    async def record_transitions(self, documents: list[Document]) -> None:
        await self._insert_ignoring_duplicates(TRANSITIONS, documents)

    async def clear_outboxes(self, subject_ids: list[str]) -> None:
        """Empty the outboxes once Kafka acknowledged their events. The caller serialises
        writers of a subject (one lock per service instance), so nothing new slipped in."""
        if subject_ids:
            await self._db[STATES].update_many(
                {"_id": {"$in": subject_ids}}, {"$set": {"outbox": [], "has_outbox": False}}
            )

    async def state(self, subject_id: str) -> Document | None:
        return await self._db[STATES].find_one({"_id": subject_id})

    async def observations(self, subject_id: str, limit: int = 1000) -> list[Document]:
        cursor = self._db[OBSERVATIONS].find({"subject_id": subject_id}).sort("as_of", 1)
        return [doc async for doc in cursor.limit(limit)]

    async def states_for_measure(self, measure_id: str) -> list[Document]:
        return [doc async for doc in self._db[STATES].find({"measure_id": measure_id})]

    async def states_for_ministry(self, ministry: str) -> list[Document]:
        return [doc async for doc in self._db[STATES].find({"ministries": ministry})]

    async def latest_assessment(self, measure_id: str) -> Document | None:
        cursor = self._db[ASSESSMENTS].find({"measure_id": measure_id})
        cursor = cursor.sort([("as_of", -1), ("time", -1), ("event_id", -1)]).limit(1)
        return next(iter([doc async for doc in cursor]), None)

    async def latest_assessments(self, measure_ids: list[str]) -> dict[str, Document]:
        latest: dict[str, Document] = {}
        cursor = self._db[ASSESSMENTS].find({"measure_id": {"$in": measure_ids}})
        async for doc in cursor:
            key = (doc["as_of"], doc["time"], doc["event_id"])
            current = latest.get(doc["measure_id"])
            if current is None or key > (current["as_of"], current["time"], current["event_id"]):
                latest[doc["measure_id"]] = doc
        return latest

    async def transitions(self, limit: int, after_id: str | None = None) -> list[Document]:
        """Status transitions in a stable order (by `_id`), for paging the open-data export."""
        query: Document = {"_id": {"$gt": after_id}} if after_id else {}
        cursor = self._db[TRANSITIONS].find(query).sort("_id", 1).limit(limit)
        return [doc async for doc in cursor]

"""Each KPI's latest status change and its reminders, in MongoDB (`alerts_kpi_states`)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from datetime import datetime

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from services.alerts.adapters.mongo import KPI_STATES, by_ids
from services.alerts.ports import Document


class MongoKpiStates:
    """Per KPI: its latest status change as this service saw it, and the reminders of its
    open episode (``subs``: subscription id → notification id, kind, episode, due time,
    reminders sent)."""

    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._c = db[KPI_STATES]

    async def record(self, documents: Sequence[Document]) -> None:
        """Keep the newest change per KPI (`changed_at`), whatever order they arrive in, with
        the reminders it starts (`reminders`: subscription id → entry) or ending them all
        (`close_reminders`).

        One KPI's changes come from one partition, so one consumer writes a KPI at a time:
        read, compare, then insert or update by `_id` alone (a filter with more than `_id`
        that matches nothing scans the collection on FerretDB).
        """
        newest: dict[str, Document] = {}
        for doc in documents:
            kept = newest.get(doc["_id"])
            if kept is None or doc["changed_at"] >= kept["changed_at"]:
                newest[doc["_id"]] = doc

        async def upsert(doc: Document) -> None:
            fields = {k: v for k, v in doc.items() if k not in ("reminders", "close_reminders")}
            entries = {} if doc.get("close_reminders") else dict(doc.get("reminders") or {})
            stored = await self._c.find_one({"_id": doc["_id"]})
            if stored is None:
                try:
                    await self._c.insert_one({**fields, "subs": entries})
                    return
                except DuplicateKeyError:
                    stored = await self._c.find_one({"_id": doc["_id"]})
            if stored is None or stored["changed_at"] > doc["changed_at"]:
                return  # a newer change is stored already
            update: Document = {"$set": fields}
            if doc.get("close_reminders"):
                update["$set"]["subs"] = {}
            for subscription_id, entry in entries.items():
                update["$set"][f"subs.{subscription_id}"] = entry
            await self._c.update_one({"_id": doc["_id"]}, update)

        await asyncio.gather(*(upsert(doc) for doc in newest.values()))

    async def get(self, kpi_id: str) -> Document | None:
        return await self._c.find_one({"_id": kpi_id})

    async def get_many(self, kpi_ids: Iterable[str]) -> dict[str, Document]:
        return {doc["_id"]: doc for doc in await by_ids(self._c, kpi_ids)}

    async def with_reminders(self) -> list[Document]:
        """KPIs with reminders to keep (a scan of one document per KPI)."""
        return [doc async for doc in self._c.find({}) if doc.get("subs")]

    async def stop_reminder(self, kpi_id: str, subscription_id: str) -> None:
        await self._c.update_one({"_id": kpi_id}, {"$unset": {f"subs.{subscription_id}": ""}})

    async def advance_reminder(
        self, kpi_id: str, subscription_id: str, *, number: int, due_at: datetime
    ) -> None:
        await self._c.update_one(
            {"_id": kpi_id},
            {
                "$set": {
                    f"subs.{subscription_id}.due_at": due_at,
                    f"subs.{subscription_id}.reminders": number,
                }
            },
        )

"""Read access to the loaded catalogue in MongoDB, shared by the services.

The catalogue loader (``shinchoku catalogue load``) writes one document per KPI or milestone to
``catalogue_items`` (the shape of ``shinchoku catalogue show --json``'s ``kpis`` entries, plus
``state`` active/retired and ``catalogue_version``), measures to ``catalogue_measures`` and
ministries to ``catalogue_ministries``.
"""

from __future__ import annotations

from typing import Any

from shared.mongo import MongoClient

ITEMS = "catalogue_items"
MEASURES = "catalogue_measures"
MINISTRIES = "catalogue_ministries"


class CatalogueStore:
    def __init__(self, client: MongoClient, database: str) -> None:
        self._db = client[database]

    async def item(self, item_id: str) -> dict[str, Any] | None:
        return await self._db[ITEMS].find_one({"_id": item_id})

    async def items(self, item_ids: list[str]) -> dict[str, dict[str, Any]]:
        found = self._db[ITEMS].find({"_id": {"$in": item_ids}})
        return {doc["_id"]: doc async for doc in found}

    async def measure(self, measure_id: str) -> dict[str, Any] | None:
        return await self._db[MEASURES].find_one({"_id": measure_id})

    async def upsert_item(self, item: dict[str, Any]) -> None:
        await self._db[ITEMS].replace_one({"_id": item["_id"]}, item, upsert=True)

    async def all_items(self) -> list[dict[str, Any]]:
        cursor = self._db[ITEMS].find({"state": {"$ne": "retired"}})
        return [doc async for doc in cursor]

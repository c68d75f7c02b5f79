"""Read access to the loaded catalogue in MongoDB, shared by the services.

The catalogue loader (``shinchoku catalogue load``, `shared.catalogue.loader`) writes:

- ``catalogue_items``: one document per KPI or milestone, ``_id`` = its id, in the shape of
  ``shinchoku catalogue show --json``'s ``kpis`` entries plus ``section_path`` (its measure's),
  ``defaults`` (the catalogue defaults in force: cadence, tolerances), and the load metadata
  below;
- ``catalogue_measures``: one document per measure, ``_id`` = its id;
- ``catalogue_ministries``: one document per ministry, ``_id`` = its code, ``order`` = its
  position in ``ministries.yaml``;
- ``catalogue_versions``: one record per loaded catalogue version (``current`` marks the one
  loaded last).

Load metadata on every item, measure and ministry: ``state`` ``active`` (in the current
version) or ``retired`` (absent from it; never deleted, so a retired KPI's history in the
``kpi_*`` collections keeps its definition), ``retired_in_version``, ``catalogue_version`` (the
version the current content was written by), ``loaded_at`` and ``content_hash``.
"""

from __future__ import annotations

from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from shared.mongo import MongoClient

ITEMS = "catalogue_items"
MEASURES = "catalogue_measures"
MINISTRIES = "catalogue_ministries"
VERSIONS = "catalogue_versions"

ACTIVE = "active"
RETIRED = "retired"


async def ensure_indexes(db: AsyncDatabase[dict[str, Any]]) -> None:
    """Indexes for the read API's filters (idempotent)."""
    await db[ITEMS].create_index([("measure_id", 1)])
    await db[ITEMS].create_index([("ministries", 1)])
    await db[ITEMS].create_index([("section_path", 1)])
    await db[MEASURES].create_index([("ministries", 1)])
    await db[MEASURES].create_index([("section_path", 1)])


class CatalogueStore:
    def __init__(self, client: MongoClient, database: str) -> None:
        self._db = client[database]

    @property
    def database(self) -> AsyncDatabase[dict[str, Any]]:
        return self._db

    async def item(self, item_id: str) -> dict[str, Any] | None:
        """A KPI or milestone, active or retired."""
        return await self._db[ITEMS].find_one({"_id": item_id})

    async def items(self, item_ids: list[str]) -> dict[str, dict[str, Any]]:
        """KPIs and milestones by id, active or retired (events about a retired KPI are still
        recorded against its definition)."""
        found = self._db[ITEMS].find({"_id": {"$in": item_ids}})
        return {doc["_id"]: doc async for doc in found}

    async def measure(self, measure_id: str) -> dict[str, Any] | None:
        return await self._db[MEASURES].find_one({"_id": measure_id})

    async def upsert_item(self, item: dict[str, Any]) -> None:
        await self._db[ITEMS].replace_one({"_id": item["_id"]}, item, upsert=True)

    async def all_items(self) -> list[dict[str, Any]]:
        """Every KPI and milestone not retired (the ones the sweep re-evaluates)."""
        cursor = self._db[ITEMS].find({"state": {"$ne": RETIRED}})
        return [doc async for doc in cursor]

    async def current_version(self) -> dict[str, Any] | None:
        """The record of the catalogue version loaded last, if any."""
        return await self._db[VERSIONS].find_one({"current": True})

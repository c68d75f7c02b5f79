"""The Catalogue port on the kpi service's copy of the catalogue in MongoDB
(shared.catalogue_store), read as definitions (adapters/definitions.py)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from services.kpi.adapters.definitions import definition_from_catalogue
from services.kpi.ports import CatalogueEntry, MeasureEntry
from shared.catalogue_store import ITEMS, MEASURES, MINISTRIES, CatalogueStore
from shared.events.validation import facts_from_catalogue, owners_from_catalogue
from shared.mongo import MongoClient


def catalogue_entry(document: Mapping[str, Any]) -> CatalogueEntry:
    """A catalogue item document as the write side reads it."""
    return CatalogueEntry(
        definition=definition_from_catalogue(document),
        facts=facts_from_catalogue(document),
        owners=owners_from_catalogue(document),
    )


def measure_entry(document: Mapping[str, Any]) -> MeasureEntry:
    return MeasureEntry(
        facts=facts_from_catalogue(document, "measure"), owners=owners_from_catalogue(document)
    )


class MongoCatalogue:
    def __init__(self, store: CatalogueStore) -> None:
        self._store = store

    async def all_entries(self) -> list[CatalogueEntry]:
        """Every KPI and milestone not retired."""
        return [catalogue_entry(doc) for doc in await self._store.all_items()]

    async def entries(self, ids: Sequence[str]) -> dict[str, CatalogueEntry]:
        found = await self._store.items(list(ids))
        return {item_id: catalogue_entry(doc) for item_id, doc in found.items()}

    async def measure(self, measure_id: str) -> MeasureEntry | None:
        document = await self._store.measure(measure_id)
        return None if document is None else measure_entry(document)

    async def measures_of(self, ids: Sequence[str]) -> set[str]:
        items = await self._store.items(list(ids))
        return {str(i["measure_id"]) for i in items.values() if i.get("measure_id")}


async def copy_catalogue(mongo: MongoClient, source: str, target: str) -> None:
    """Copy one database's catalogue (items, measures, ministries) into another (a replay's)."""
    for collection in (ITEMS, MEASURES, MINISTRIES):
        documents = [doc async for doc in mongo[source][collection].find({})]
        if documents:
            await mongo[target][collection].insert_many(documents)


async def every_item(db: AsyncDatabase[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Every KPI and milestone document by id, retired ones included."""
    return {doc["_id"]: doc async for doc in db[ITEMS].find({})}

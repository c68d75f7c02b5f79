"""The catalogue as ingest reads it: a snapshot of every item and measure, refreshed every
``ttl_s`` seconds, with a direct read for an id the snapshot does not hold (just loaded).

A change to an entry already in the snapshot (ownership, retirement) is seen within ``ttl_s``
(5 s by default), and at once on the instance that made it (`invalidate`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable
from typing import Any, Literal

from services.ingest.adapters.errors import storage_errors
from services.ingest.ports import CatalogueEntry
from shared.catalogue_store import ITEMS, MEASURES
from shared.events.validation import facts_from_catalogue, owners_from_catalogue
from shared.mongo import MongoClient

Document = dict[str, Any]


class CachedCatalogue:
    def __init__(
        self,
        client: MongoClient,
        database: str,
        ttl_s: float,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._db = client[database]
        self._ttl_s = ttl_s
        self._monotonic = monotonic
        self._items: dict[str, Document] = {}
        self._measures: dict[str, Document] = {}
        self._loaded_at: float | None = None
        self._lock = asyncio.Lock()

    def invalidate(self) -> None:
        """Drop the snapshot: the next read loads a fresh one (after an ownership change)."""
        self._loaded_at = None

    async def _fresh(self) -> bool:
        """True when a snapshot is in use (false with ttl 0: every read goes to the store)."""
        if self._ttl_s <= 0:
            return False
        now = self._monotonic()
        if self._loaded_at is not None and now - self._loaded_at < self._ttl_s:
            return True
        async with self._lock:
            if self._loaded_at is None or self._monotonic() - self._loaded_at >= self._ttl_s:
                items = {d["_id"]: d async for d in self._db[ITEMS].find({})}
                measures = {d["_id"]: d async for d in self._db[MEASURES].find({})}
                self._items, self._measures = items, measures
                self._loaded_at = self._monotonic()
        return True

    async def items(self, item_ids: Iterable[str]) -> dict[str, CatalogueEntry]:
        return _entries(await self._documents(ITEMS, set(item_ids)), "item")

    async def measures(self, measure_ids: Iterable[str]) -> dict[str, CatalogueEntry]:
        return _entries(await self._documents(MEASURES, set(measure_ids)), "measure")

    async def _documents(self, collection: str, wanted: set[str]) -> dict[str, Document]:
        with storage_errors():
            found: dict[str, Document] = {}
            if await self._fresh():
                snapshot = self._items if collection == ITEMS else self._measures
                found = {i: snapshot[i] for i in wanted if i in snapshot}
            return found | await self._read(collection, wanted - found.keys())

    async def _read(self, collection: str, ids: set[str]) -> dict[str, Document]:
        if not ids:
            return {}
        cursor = self._db[collection].find({"_id": {"$in": sorted(ids)}})
        return {d["_id"]: d async for d in cursor}


def _entries(
    documents: dict[str, Document], kind: Literal["item", "measure"]
) -> dict[str, CatalogueEntry]:
    return {
        id_: CatalogueEntry(facts_from_catalogue(d, kind), owners_from_catalogue(d))
        for id_, d in documents.items()
    }

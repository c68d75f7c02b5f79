"""The catalogue read API's queries (entrypoints/catalogue_api.py) on MongoDB.

Filters run in MongoDB (`find` with `$in` / an anchored `$regex`, `count_documents` for the
total), so a page costs one query and one count whatever the catalogue's size. Documents are
returned as stored; the routes decide what of them is shown.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, Literal

from pymongo.asynchronous.database import AsyncDatabase

from shared.catalogue_store import ITEMS, MEASURES, MINISTRIES, RETIRED

Document = dict[str, Any]
Page = tuple[list[Document], int]


def _section_regex(section: str) -> str:
    """Anchored prefix pattern; only the regex metacharacters are escaped (FerretDB's Go
    regexp rejects escapes of ordinary characters such as spaces)."""
    section = re.sub(r"第([0-9])", lambda m: "第" + chr(ord(m.group(1)) + 0xFEE0), section)
    return "^" + re.sub(r"([\\.^$|?*+()\[\]{}])", r"\\\1", section)


def _filter(ministry: Sequence[str] | None, section: str | None, include_retired: bool) -> Document:
    query: Document = {}
    if not include_retired:
        query["state"] = {"$ne": RETIRED}
    if ministry:
        query["ministries"] = {"$in": list(ministry)}
    if section:
        query["section_path"] = {"$regex": _section_regex(section)}
    return query


class CatalogueReads:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._db = db

    async def unknown_ministries(self, codes: Sequence[str]) -> list[str]:
        """Those of `codes` that name no ministry, in the order given."""
        found = self._db[MINISTRIES].find({"_id": {"$in": list(codes)}}, {"_id": 1})
        known = {doc["_id"] async for doc in found}
        return [c for c in codes if c not in known]

    async def counts_by_ministry(
        self, of: Literal["measures", "items"], section: str | None
    ) -> dict[str, int]:
        """How many active measures (or KPIs and milestones) each ministry owns, within
        `section` if given."""
        pipeline: list[Document] = [
            {"$match": _filter(None, section, include_retired=False)},
            {"$unwind": "$ministries"},
            {"$group": {"_id": "$ministries", "n": {"$sum": 1}}},
        ]
        cursor = await self._db[MEASURES if of == "measures" else ITEMS].aggregate(pipeline)
        return {doc["_id"]: int(doc["n"]) async for doc in cursor}

    async def ministries(
        self, codes: set[str] | None, include_retired: bool, limit: int, offset: int
    ) -> Page:
        """Ministries in the catalogue's order (only `codes` when given)."""
        query = _filter(None, None, include_retired)
        if codes is not None:
            query["_id"] = {"$in": sorted(codes)}
        return await self._page(MINISTRIES, query, "order", limit, offset)

    async def measures(
        self,
        ministry: Sequence[str] | None,
        section: str | None,
        include_retired: bool,
        limit: int,
        offset: int,
    ) -> Page:
        query = _filter(ministry, section, include_retired)
        return await self._page(MEASURES, query, "_id", limit, offset)

    async def items(
        self,
        ministry: Sequence[str] | None,
        section: str | None,
        measure_id: str | None,
        kind: str | None,
        include_retired: bool,
        limit: int,
        offset: int,
    ) -> Page:
        query = _filter(ministry, section, include_retired)
        if measure_id is not None:
            query["measure_id"] = measure_id
        if kind is not None:
            query["kind"] = kind
        return await self._page(ITEMS, query, "_id", limit, offset)

    async def measure(self, measure_id: str) -> Document | None:
        return await self._db[MEASURES].find_one({"_id": measure_id})

    async def measure_items(self, measure_id: str) -> list[Document]:
        """A measure's KPIs and milestones, retired ones included, in id order."""
        cursor = self._db[ITEMS].find({"measure_id": measure_id}).sort("_id", 1)
        return [doc async for doc in cursor]

    async def _page(
        self, collection: str, query: Document, sort: str, limit: int, offset: int
    ) -> Page:
        total = await self._db[collection].count_documents(query)
        cursor = self._db[collection].find(query).sort(sort, 1).skip(offset).limit(limit)
        return [doc async for doc in cursor], total

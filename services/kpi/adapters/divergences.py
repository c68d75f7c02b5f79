"""The DivergenceStore port on MongoDB: ``kpi_divergences``, one record per assessed measure,
``_id`` = the measure id."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from services.kpi.domain.divergence import DivergenceRecord

DIVERGENCES = "kpi_divergences"
Document = dict[str, Any]


class MongoDivergenceStore:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._c = db[DIVERGENCES]

    async def get(self, measure_id: str) -> DivergenceRecord | None:
        doc = await self._c.find_one({"_id": measure_id})
        if doc is None:
            return None
        return DivergenceRecord.model_validate({k: v for k, v in doc.items() if k != "_id"})

    async def put(self, measure_id: str, record: DivergenceRecord) -> None:
        await self._c.replace_one(
            {"_id": measure_id},
            {"_id": measure_id, **record.model_dump(mode="json")},
            upsert=True,
        )

    async def assessed(self, measure_ids: Sequence[str]) -> set[str]:
        found = self._c.find({"_id": {"$in": list(measure_ids)}}, {"_id": 1})
        return {doc["_id"] async for doc in found}

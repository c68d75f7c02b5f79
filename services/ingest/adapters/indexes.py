"""Indexes of the ingest service's collections (idempotent).

The receipt collections are read and written by ``_id`` only (unique by itself). API keys are
listed by ministry.
"""

from __future__ import annotations

from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from services.ingest.adapters.keys import API_KEYS


async def ensure_indexes(db: AsyncDatabase[dict[str, Any]]) -> None:
    await db[API_KEYS].create_index([("ministry", 1)])

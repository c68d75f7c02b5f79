"""Indexes of the ingest service's collections (idempotent)."""

from __future__ import annotations

from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from services.ingest.adapters.receipts import RECEIPTS


async def ensure_indexes(db: AsyncDatabase[dict[str, Any]]) -> None:
    # _id (source + id) is the dedup key and is unique by itself; this one serves the sweep
    # that finds receipts left pending by a crash.
    await db[RECEIPTS].create_index([("state", 1), ("received_at", 1)])

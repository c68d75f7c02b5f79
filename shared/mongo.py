"""MongoDB client factory and probe (PyMongo's native async API; FerretDB-compatible subset)."""

from __future__ import annotations

import asyncio
from typing import Any

from pymongo import AsyncMongoClient
from pymongo.errors import PyMongoError

from shared.settings import MongoSettings

MongoClient = AsyncMongoClient[dict[str, Any]]


def create_mongo_client(settings: MongoSettings, *, app_name: str) -> MongoClient:
    # tz_aware so datetimes read back compare with the UTC-aware ones we write.
    client: MongoClient = AsyncMongoClient(
        settings.url,
        appname=app_name,
        tz_aware=True,
        serverSelectionTimeoutMS=settings.server_selection_timeout_ms,
        connectTimeoutMS=2_000,
    )
    return client


async def mongo_reachable(client: MongoClient, timeout_s: float) -> bool:
    try:
        async with asyncio.timeout(timeout_s):
            await client.admin.command("ping")
            return True
    except (TimeoutError, PyMongoError, OSError):
        return False

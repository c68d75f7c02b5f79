"""Events an operator must see, in MongoDB (`alerts_operator_events`)."""

from __future__ import annotations

import builtins
from dataclasses import asdict, fields
from datetime import datetime

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from services.alerts.adapters.mongo import OPERATOR_EVENTS, newest_first_after
from services.alerts.ports import Document, OperatorEvent


def event_document(event: OperatorEvent) -> Document:
    stored = asdict(event)
    return {"_id": stored.pop("id"), **stored}


FIELDS = frozenset(f.name for f in fields(OperatorEvent)) - {"id"}


def event_from_document(doc: Document) -> OperatorEvent:
    return OperatorEvent(id=doc["_id"], **{k: v for k, v in doc.items() if k in FIELDS})


class MongoOperatorEvents:
    """Events an operator must see (an endpoint disabled), kept in MongoDB and logged."""

    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._c = db[OPERATOR_EVENTS]

    async def record(self, event: OperatorEvent) -> bool:
        """False when this event was already recorded (same deterministic id)."""
        try:
            await self._c.insert_one(event_document(event))
        except DuplicateKeyError:
            return False
        return True

    async def list(
        self,
        *,
        limit: int,
        subscription_id: str | None = None,
        after: tuple[datetime, str] | None = None,
    ) -> builtins.list[OperatorEvent]:
        query: Document = {} if subscription_id is None else {"subscription_id": subscription_id}
        if after is not None:
            query = {"$and": [query, newest_first_after(*after)]}
        cursor = self._c.find(query).sort([("at", -1), ("_id", -1)]).limit(limit)
        return [event_from_document(doc) async for doc in cursor]

"""Durable record of accepted events, keyed by CloudEvents source + id, for deduplication.

A receipt is written ``pending`` before publishing and turned ``accepted`` after the broker's
acknowledgement; a failed publish removes it so the sender's retry goes through. The unique ``_id``
makes two concurrent submissions of one event race safely: only one inserts.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pymongo.errors import BulkWriteError, DuplicateKeyError

from shared.events.cloudevents import CloudEvent
from shared.mongo import MongoClient

RECEIPTS = "ingest_receipts"


class Claim(StrEnum):
    NEW = "new"
    DUPLICATE = "duplicate"
    IN_FLIGHT = "in_flight"


class ReceiptStore:
    def __init__(self, client: MongoClient, database: str) -> None:
        self._receipts = client[database][RECEIPTS]

    async def claim(self, events: list[CloudEvent], now: datetime) -> list[Claim]:
        """Insert a pending receipt per event; an existing one makes the event a duplicate."""
        if not events:
            return []
        documents = [
            {
                "_id": e.dedup_key,
                "state": "pending",
                "type": e.type,
                "subject": e.subject,
                "received_at": now,
            }
            for e in events
        ]
        claims = [Claim.NEW] * len(events)
        try:
            await self._receipts.insert_many(documents, ordered=False)
        except BulkWriteError as error:
            for failure in error.details.get("writeErrors", []):
                if failure.get("code") != 11000:
                    raise
                claims[failure["index"]] = Claim.DUPLICATE
        except DuplicateKeyError:
            claims = [Claim.DUPLICATE]
        duplicates = [events[i].dedup_key for i, c in enumerate(claims) if c is Claim.DUPLICATE]
        if duplicates:
            pending = {
                doc["_id"]
                async for doc in self._receipts.find(
                    {"_id": {"$in": duplicates}, "state": "pending"}, {"_id": 1}
                )
            }
            claims = [
                Claim.IN_FLIGHT if c is Claim.DUPLICATE and events[i].dedup_key in pending else c
                for i, c in enumerate(claims)
            ]
        return claims

    async def confirm(self, events: list[CloudEvent], now: datetime) -> None:
        if events:
            await self._receipts.update_many(
                {"_id": {"$in": [e.dedup_key for e in events]}},
                {"$set": {"state": "accepted", "accepted_at": now}},
            )

    async def release(self, events: list[CloudEvent]) -> None:
        if events:
            await self._receipts.delete_many(
                {"_id": {"$in": [e.dedup_key for e in events]}, "state": "pending"}
            )

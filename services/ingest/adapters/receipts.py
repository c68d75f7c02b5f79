"""Durable deduplication receipts keyed by CloudEvents source + id (see domain/receipts.py).

Three insert-only collections, read only by ``_id``:

- ``ingest_claims``: one document per attempt to publish an event (``_id`` = source, id, attempt),
  naming the batch it was published in;
- ``ingest_accepted_batches``: one document per batch of which at least one event reached Kafka;
- ``ingest_released_claims``: one document per claim whose event did not reach Kafka.

The happy path costs one bulk insert of claims and one small insert per batch, whatever the batch
size, so a 500-event batch does not pay 500 round trips; and concurrent requests share those
inserts (adapters/batching.py), so single-event POSTs do not pay one commit each either.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from pymongo.errors import BulkWriteError, DuplicateKeyError

from services.ingest.adapters.batching import BatchingInserter
from services.ingest.adapters.errors import storage_errors
from services.ingest.domain.receipts import ClaimState, batch_time, claim_state
from services.ingest.ports import Claim, Claimed
from shared.events.cloudevents import CloudEvent
from shared.mongo import MongoClient

CLAIMS = "ingest_claims"
ACCEPTED_BATCHES = "ingest_accepted_batches"
RELEASED_CLAIMS = "ingest_released_claims"
DUPLICATE_KEY = 11000
# Attempts after which an event is reported in flight rather than claimed again (a sender
# retrying through that many Kafka outages is better told to wait).
MAX_ATTEMPTS = 64
# Concurrent reads when resolving many already-claimed events (a resent batch).
RESOLVE_CONCURRENCY = 16


def claim_id(dedup_key: str, attempt: int) -> str:
    return f"{dedup_key}\x1e{attempt}"


class ReceiptStore:
    """Use as ``async with ReceiptStore(...) as receipts:`` (it owns two group-commit tasks)."""

    def __init__(self, client: MongoClient, database: str, *, takeover_after: timedelta) -> None:
        db = client[database]
        self._claims = db[CLAIMS]
        self._batches = db[ACCEPTED_BATCHES]
        self._released = db[RELEASED_CLAIMS]
        self._claim_writer = BatchingInserter(self._claims)
        self._batch_writer = BatchingInserter(self._batches)
        self._takeover_after = takeover_after
        # Batches this process saw accepted: spares a read when a batch is resent at once.
        self._accepted_cache: OrderedDict[str, None] = OrderedDict()

    async def __aenter__(self) -> ReceiptStore:
        await self._claim_writer.__aenter__()
        await self._batch_writer.__aenter__()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._batch_writer.__aexit__(*exc)
        await self._claim_writer.__aexit__(*exc)

    @property
    def alive(self) -> bool:
        return self._claim_writer.alive and self._batch_writer.alive

    async def claim(
        self, events: Sequence[CloudEvent], batch_id: str, now: datetime
    ) -> list[Claimed]:
        """Claim every event for this batch; NEW ones must be published by the caller."""
        with storage_errors():
            return await self._claim(events, batch_id, now)

    async def _claim(
        self, events: Sequence[CloudEvent], batch_id: str, now: datetime
    ) -> list[Claimed]:
        if not events:
            return []
        documents = [self._claim_document(e, 0, batch_id) for e in events]
        taken = sorted(await self._claim_writer.insert(documents))
        results = [Claimed(Claim.NEW, d["_id"]) for d in documents]
        if taken:
            limit = asyncio.Semaphore(RESOLVE_CONCURRENCY)

            async def resolve(index: int) -> None:
                async with limit:
                    results[index] = await self._resolve(events[index], batch_id, now)

            await asyncio.gather(*(resolve(i) for i in taken))
        return results

    async def _resolve(self, event: CloudEvent, batch_id: str, now: datetime) -> Claimed:
        """Walk the attempts of an event whose first claim exists (see domain/receipts.py)."""
        for attempt in range(MAX_ATTEMPTS):
            document = self._claim_document(event, attempt, batch_id)
            existing = await self._claims.find_one({"_id": document["_id"]})
            if existing is None:
                try:
                    await self._claims.insert_one(document)
                    return Claimed(Claim.NEW, document["_id"])
                except DuplicateKeyError:
                    existing = await self._claims.find_one({"_id": document["_id"]})
                    if existing is None:  # pragma: no cover - claims are never deleted
                        return Claimed(Claim.IN_FLIGHT)
            state = claim_state(
                released=await self._is_released(existing["_id"]),
                batch_accepted=await self._is_accepted(existing["b"]),
                claimed_at=batch_time(existing["b"]),
                now=now,
                takeover_after=self._takeover_after,
            )
            if state is ClaimState.ACCEPTED:
                return Claimed(Claim.DUPLICATE)
            if state is ClaimState.PENDING:
                return Claimed(Claim.IN_FLIGHT)
        return Claimed(Claim.IN_FLIGHT)

    async def _is_released(self, claim: str) -> bool:
        return await self._released.find_one({"_id": claim}, {"_id": 1}) is not None

    async def _is_accepted(self, batch_id: str) -> bool:
        if batch_id in self._accepted_cache:
            return True
        found = await self._batches.find_one({"_id": batch_id}, {"_id": 1}) is not None
        if found:
            self._remember(batch_id)
        return found

    def _remember(self, batch_id: str) -> None:
        self._accepted_cache[batch_id] = None
        while len(self._accepted_cache) > 10_000:
            self._accepted_cache.popitem(last=False)

    async def release(self, claim_ids: Sequence[str], now: datetime) -> None:
        """Mark claims whose events did not reach Kafka, so a retry may publish them."""
        if not claim_ids:
            return
        with storage_errors():
            try:
                await self._released.insert_many(
                    [{"_id": c, "released_at": now} for c in claim_ids], ordered=False
                )
            except BulkWriteError as error:
                codes = {f.get("code") for f in error.details.get("writeErrors", [])}
                if codes - {DUPLICATE_KEY}:
                    raise

    async def accept(self, batch_id: str, events: int, now: datetime) -> None:
        """Mark the batch accepted: its claims not released are now durable duplicates."""
        with storage_errors():
            await self._batch_writer.insert(
                [{"_id": batch_id, "accepted_at": now, "events": events}]
            )
        self._remember(batch_id)

    @staticmethod
    def _claim_document(event: CloudEvent, attempt: int, batch_id: str) -> dict[str, Any]:
        # Small on purpose (FerretDB's cost grows with the fields): one is written per event.
        # `b` is the batch, which also tells when the claim was made. The event is on Kafka.
        return {"_id": claim_id(event.dedup_key, attempt), "b": batch_id}

"""Deliveries in MongoDB, split by responsibility over the collections they share:

- `MongoDeliveryQueue` (the `DeliveryQueue` port): the message archive (``alerts_deliveries``,
  insert-only content, ``_id`` = ``webhook-id``), the live queue (``alerts_queue``: pending or
  held, scheduling fields only) and the final outcomes (``alerts_delivery_outcomes``).
- `MongoDeliveryLeases`: who sends a due message now: a lease (expiry and token) on its queue
  entry, then an insert-only fence per attempt (``alerts_attempt_fences``).
- `MongoDeliveryLog`: the attempt log (``alerts_attempts``, insert-only).

The lease fields (``lease_until``, ``lease_token``) and the document shapes live only here.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta

from pymongo import ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from services.alerts.adapters.delivery_documents import (
    FINAL_STATES,
    LEASE_ENDED_UNRECORDED,
    delivery_document,
    fence_document,
    is_due,
    log_entry,
    outcome_document,
    queue_entry,
    requeued,
)
from services.alerts.adapters.mongo import (
    ATTEMPTS,
    DELIVERIES,
    FENCES,
    OUTCOMES,
    QUEUE,
    insert_new,
    newest_first_after,
)
from services.alerts.ports import Document, NewDelivery


class MongoDeliveryQueue:
    """The message archive (insert-only content), the live queue of messages to send and the
    outcomes (insert-only final states)."""

    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._queue = db[QUEUE]
        self._archive = db[DELIVERIES]
        self._outcomes = db[OUTCOMES]

    async def create(self, delivery: NewDelivery) -> bool:
        """Archive and queue a new message; False when it already existed (recovery)."""
        return bool(await self.create_many([delivery]))

    async def create_many(self, deliveries: Sequence[NewDelivery]) -> list[NewDelivery]:
        """Archive and queue new messages (two writes for any number); returns those that did
        not exist yet. Archived first: a queued message always has its body."""
        documents = [delivery_document(d) for d in deliveries]
        archived = {doc["_id"] for doc in await insert_new(self._archive, documents)}
        await insert_new(self._queue, [queue_entry(d) for d in documents])
        return [d for d in deliveries if d.message_id in archived]

    async def ensure_created(self, deliveries: Sequence[NewDelivery]) -> int:
        """For messages a creator may have left half-made (it stopped between the archive and
        the queue): create what is missing. Returns how many were (re)queued. Used only in
        recovery (a redelivered status change, a stale claim)."""
        created = 0
        for delivery in deliveries:
            archived = await self._archive.find_one({"_id": delivery.message_id})
            if archived is None:
                created += len(await self.create_many([delivery]))
            elif await self.state_of(delivery.message_id) is None:
                # Archived, neither queued nor finished: never sent, so queued as new.
                created += len(await insert_new(self._queue, [queue_entry(archived)]))
        return created

    async def get(self, delivery_id: str) -> Document | None:
        """A message's content from the archive."""
        return await self._archive.find_one({"_id": delivery_id})

    async def queued(self, delivery_id: str) -> Document | None:
        return await self._queue.find_one({"_id": delivery_id})

    async def state_of(self, delivery_id: str) -> str | None:
        """pending or held (queued), else the latest outcome; None for an unknown message."""
        queued = await self.queued(delivery_id)
        if queued is not None:
            return str(queued["state"])
        latest = await self._latest_outcomes({"message_id": delivery_id})
        outcome = latest.get(delivery_id)
        return None if outcome is None else str(outcome["state"])

    async def _latest_outcomes(self, query: Document) -> dict[str, Document]:
        latest: dict[str, Document] = {}
        async for outcome in self._outcomes.find(query):
            kept = latest.get(outcome["message_id"])
            if kept is None or (outcome["at"], outcome["attempts"]) >= (
                kept["at"],
                kept["attempts"],
            ):
                latest[outcome["message_id"]] = outcome
        return latest

    async def update_delivery(
        self, delivery: Document, update: Document, *, at: datetime, attempt: int | None = None
    ) -> bool:
        """Apply the outcome of attempt number `attempt` (never over a later attempt's), or,
        without an attempt, move a still pending delivery to another state. A final state
        (delivered, failed, cancelled) takes the message off the queue and is recorded as an
        outcome. The update ends the attempt's lease (at `at`)."""
        update = {**update, "lease_until": at}
        query: Document = {"_id": delivery["_id"]}
        if attempt is None:
            query["state"] = "pending"
        else:
            query["attempts"] = {"$lt": attempt}
        state = update.get("state")
        if state not in FINAL_STATES:
            result = await self._queue.update_one(query, {"$set": {**update, "lease_token": None}})
            return result.modified_count == 1
        if (await self._queue.delete_one(query)).deleted_count != 1:
            return False
        await insert_new(self._outcomes, [outcome_document(delivery, update)])
        return True

    async def hold(self, delivery: Document, reason: str, now: datetime) -> None:
        await self.update_delivery(delivery, {"state": "held", "held_reason": reason}, at=now)

    async def for_subscription(
        self,
        subscription_id: str,
        *,
        state: str | None,
        since: datetime | None,
        until: datetime | None,
        limit: int | None,
    ) -> list[Document]:
        """Messages of a subscription, newest first, with their current state and attempt
        count. An admin query: it scans the archive and the outcomes."""
        query: Document = {"subscription_id": subscription_id}
        created: Document = {}
        if since is not None:
            created["$gte"] = since
        if until is not None:
            created["$lt"] = until
        if created:
            query["created_at"] = created
        archived = [
            doc async for doc in self._archive.find(query).sort([("created_at", -1), ("_id", 1)])
        ]
        queued = {
            doc["_id"]: doc async for doc in self._queue.find({"subscription_id": subscription_id})
        }
        outcomes = await self._latest_outcomes({"subscription_id": subscription_id})
        result = []
        for doc in archived:
            live = queued.get(doc["_id"]) or outcomes.get(doc["_id"]) or {}
            current = {**doc, **{k: v for k, v in live.items() if k != "_id"}}
            if doc["_id"] in queued:
                current.setdefault("state", "pending")
            if state is None or current.get("state") == state:
                result.append(current)
            if limit is not None and len(result) >= limit:
                break
        return result

    async def _requeue(self, doc: Document, now: datetime, manual: bool) -> Document:
        again = requeued(doc, now, manual=manual)
        await self._queue.replace_one({"_id": doc["_id"]}, queue_entry(again), upsert=True)
        return again

    async def release_held(self, subscription_id: str, now: datetime) -> int:
        query = {"subscription_id": subscription_id, "state": "held"}
        held = [doc async for doc in self._queue.find(query)]
        for entry in held:
            await self._requeue(entry, now, manual=False)
        return len(held)

    async def cancel_for(self, subscription_id: str, now: datetime) -> int:
        queued = [doc async for doc in self._queue.find({"subscription_id": subscription_id})]
        for doc in queued:
            await self.update_delivery(
                {**doc, "state": "pending"},
                {"state": "cancelled", "last_attempt_at": now, "attempts": doc["attempts"]},
                at=now,
                attempt=int(doc["attempts"]) + 1,
            )
        return len(queued)

    async def redeliver(self, delivery_id: str, now: datetime) -> Document | None:
        """Queue a message again, now, with a fresh retry schedule (same webhook-id)."""
        doc = await self.get(delivery_id)
        if doc is None or await self.state_of(delivery_id) == "cancelled":
            return None
        queued = await self.queued(delivery_id)
        attempts = int(queued["attempts"]) if queued else await self._attempts_made(delivery_id)
        return await self._requeue({**doc, "attempts": attempts}, now, manual=True)

    async def _attempts_made(self, delivery_id: str) -> int:
        latest = await self._latest_outcomes({"message_id": delivery_id})
        outcome = latest.get(delivery_id)
        return 0 if outcome is None else int(outcome["attempts"])

    async def redeliver_failed(
        self, subscription_id: str, since: datetime, until: datetime, now: datetime
    ) -> int:
        failed = await self.for_subscription(
            subscription_id, state="failed", since=since, until=until, limit=100_000
        )
        for doc in failed:
            await self._requeue(doc, now, manual=True)
        return len(failed)

    async def count_by_state(self) -> dict[str, int]:
        """Queue sizes (pending, held): the live queue only."""
        cursor = await self._queue.aggregate([{"$group": {"_id": "$state", "n": {"$sum": 1}}}])
        return {doc["_id"]: int(doc["n"]) async for doc in cursor}

    async def count_retrying(self) -> int:
        """Pending messages whose last attempt failed (waiting for a retry); a redelivery
        starts its retries afresh."""
        return await self._queue.count_documents({"state": "pending", "retry_index": {"$gt": 0}})


class MongoDeliveryLeases:
    """Leases on queued messages (fresh token and expiry) and the attempt fences: an attempt's
    ``<webhook-id>#<n>`` is inserted before it is sent, so two instances never make one."""

    def __init__(self, db: AsyncDatabase[Document], log: MongoDeliveryLog) -> None:
        self._queue = db[QUEUE]
        self._fences = db[FENCES]
        self._log = log

    async def queued(self, delivery_id: str) -> Document | None:
        return await self._queue.find_one({"_id": delivery_id})

    async def lease_batch(
        self,
        now: datetime,
        lease: timedelta,
        *,
        limit: int,
        exclude_subscriptions: Iterable[str] = (),
        exclude_ids: Iterable[str] = (),
    ) -> list[Document]:
        """Lease up to `limit` due deliveries: one scan of the (small) queue for candidates,
        then each taken with `find_one_and_update` (a fresh lease token and expiry)."""
        query: Document = {
            "state": "pending",
            "next_attempt_at": {"$lte": now},
            "lease_until": {"$lte": now},
        }
        excluded = list(exclude_subscriptions)
        if excluded:
            query["subscription_id"] = {"$nin": excluded}
        excluded_ids = list(exclude_ids)
        if excluded_ids:
            query["_id"] = {"$nin": excluded_ids}
        cursor = self._queue.find(query, {"_id": 1}).sort("next_attempt_at", 1).limit(limit)
        candidates = [doc["_id"] async for doc in cursor]
        leased = []
        for candidate in candidates:
            doc = await self._queue.find_one_and_update(
                {"_id": candidate, "state": "pending", "lease_until": {"$lte": now}},
                {"$set": {"lease_until": now + lease, "lease_token": secrets.token_hex(8)}},
                return_document=ReturnDocument.AFTER,
            )
            if doc is not None:
                leased.append(doc)
        return leased

    async def release_lease(self, delivery: Document, now: datetime) -> None:
        await self._queue.update_one(
            {"_id": delivery["_id"], "state": "pending"},
            {"$set": {"lease_until": now, "lease_token": None}},
        )

    async def start_attempt(
        self, delivery: Document, now: datetime, lease: timedelta, *, tries: int = 3
    ) -> tuple[Document, Document] | None:
        """Fence an attempt: insert `<webhook-id>#<n>` into the fences before sending; returns
        the fence and the delivery as it is now. None when the attempt is not ours to make:
        another worker is making it or has made it, or the delivery is no longer due (the
        leased copy was stale).

        A fence whose lease is over (its worker died, or stopped and said so) is logged as an
        `interrupted` attempt, unless logged already, and the next number is used.
        """
        number = int(delivery["attempts"]) + 1
        for _ in range(tries):
            fence = fence_document(delivery, number, now, lease)
            try:
                await self._fences.insert_one(fence)
            except DuplicateKeyError:
                existing = await self._fences.find_one({"_id": fence["_id"]})
                if existing is not None and existing["lease_until"] > now:
                    return None  # being made, or just made: its outcome is on its way
                if existing is not None:
                    # Its worker would have recorded an outcome (a timeout included) before the
                    # lease ended: it stopped without saying so, or lost the database.
                    interrupted = {"result": "interrupted", "error": LEASE_ENDED_UNRECORDED}
                    await self._log.finish_attempt(existing, interrupted)
                fresh = await self.queued(delivery["_id"])
                if fresh is None or not is_due(fresh, now):
                    return None
                number = max(number, int(fresh["attempts"])) + 1
                continue
            fresh = await self.queued(delivery["_id"])
            if fresh is None or not is_due(fresh, now) or int(fresh["attempts"]) >= number:
                await self._fences.delete_one({"_id": fence["_id"]})
                return None
            return fence, fresh
        return None

    async def interrupt(self, fence: Document, now: datetime, reason: str) -> None:
        """Stopping mid-attempt: log it and end the fence's lease, so the next instance retries
        at once (an update of a growing collection: only ever at shutdown)."""
        await self._log.finish_attempt(fence, {"result": "interrupted", "error": reason})
        await self._fences.update_one({"_id": fence["_id"]}, {"$set": {"lease_until": now}})


class MongoDeliveryLog:
    """Every attempt made, with its outcome (insert-only)."""

    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._attempts = db[ATTEMPTS]

    async def finish_attempt(self, fence: Document, outcome: Document) -> None:
        """Log the attempt with its outcome (status code, latency, result, error)."""
        await insert_new(self._attempts, [log_entry(fence, outcome)])

    async def attempts(
        self,
        subscription_id: str,
        *,
        limit: int,
        since: datetime | None = None,
        message_id: str | None = None,
        after: tuple[datetime, str] | None = None,
    ) -> list[Document]:
        """Attempts newest first (by time, then id); `after`: those after that (time, id)."""
        query: Document = {"subscription_id": subscription_id}
        if since is not None:
            query["at"] = {"$gte": since}
        if message_id is not None:
            query["message_id"] = message_id
        if after is not None:
            query = {"$and": [query, newest_first_after(*after)]}
        cursor = self._attempts.find(query).sort([("at", -1), ("_id", -1)])
        return [doc async for doc in cursor.limit(limit)]

"""MongoDB persistence of the alerts service, shaped for FerretDB v1 as well as MongoDB.

Two facts about FerretDB v1 (SQLite backend), measured on the local stack, decide the layout:

1. Only ``find_one({"_id": …})`` of an existing document is served by the index. Any other
   filter, a lookup of a missing ``_id``, and every update or delete (even by ``_id``) scan
   the whole collection (0.01-0.15 ms a document). So archives are **insert-only** and read
   only by ``_id``; what changes lives in small **live** collections that hold only what is in
   flight (``alerts_pending``, ``alerts_queue``) or one document per KPI or subscription.
2. ``find_one_and_update`` and filtered updates are not compare-and-set under concurrency
   (two concurrent leases of one document both succeed), while inserts with a unique ``_id``
   and deletes are atomic. So exclusivity is decided by inserts: an attempt's fence
   ``<webhook-id>#<n>`` is inserted *before* it is sent, and a notification's membership in a
   delivery is an insert keyed by the notification. Two instances never send the same attempt,
   and each notification goes into one delivery, on either backend. (Updates also cost about
   five times an insert there, so the attempt log is insert-only.)

Collections:

- ``alerts_subscriptions``: subscriptions (target, filter, secrets, state). Small.
- ``alerts_notifications``: every notification ever, keyed by its dedup key (subscription, KPI,
  episode, kind; ``#rN`` for the N-th reminder), so a status change Kafka redelivers cannot
  notify twice. Insert-only; the current state is the live set's, else the fate's.
- ``alerts_pending``: the notifications not yet in a delivery (waiting in a grouping window,
  muted by a silence, claimed into a delivery being created).
- ``alerts_memberships``: each notification's fate, the delivery it went into or why it was
  dropped (insert-only: the fence that gives a notification to one delivery).
- ``alerts_queue``: deliveries still to send (``pending``) or held for a paused or disabled
  subscription (``held``). Workers lease with ``find_one_and_update`` (fresh token and expiry).
- ``alerts_deliveries``: every webhook message ever, its content (``_id`` = ``webhook-id``,
  stable across retries and restarts). Insert-only.
- ``alerts_delivery_outcomes``: final states (delivered, failed, cancelled), one insert each;
  a message's state is its queue entry's while queued, else its latest outcome.
- ``alerts_attempt_fences``: one insert per attempt started (insert-only fence).
- ``alerts_attempts``: the delivery log, one document per attempt made, with its outcome.
- ``alerts_kpi_states``: per KPI, its latest status change and, per subscription, the
  notification of the open episode that reminds and when (one upsert per change).
- ``alerts_silences`` and ``alerts_operator_events``.
"""

from __future__ import annotations

import asyncio
import builtins
import hashlib
import secrets
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from pymongo import ReturnDocument
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError, DuplicateKeyError

# Why an attempt found with its lease over and no outcome is logged as interrupted.
LEASE_ENDED_UNRECORDED = (
    "no outcome was recorded before the attempt's lease ended (its worker stopped or lost "
    "the database)"
)

SUBSCRIPTIONS = "alerts_subscriptions"
NOTIFICATIONS = "alerts_notifications"
PENDING = "alerts_pending"
MEMBERSHIPS = "alerts_memberships"
QUEUE = "alerts_queue"
DELIVERIES = "alerts_deliveries"
ATTEMPTS = "alerts_attempts"
FENCES = "alerts_attempt_fences"
OUTCOMES = "alerts_delivery_outcomes"
SILENCES = "alerts_silences"
KPI_STATES = "alerts_kpi_states"
OPERATOR_EVENTS = "alerts_operator_events"

Document = dict[str, Any]
DUPLICATE_KEY = 11000
FINAL_STATES = frozenset({"delivered", "failed", "cancelled"})
# What a queue entry holds: scheduling only (the body stays in the archive), so that scanning
# the queue stays cheap on FerretDB.
QUEUE_FIELDS = (
    "_id",
    "subscription_id",
    "state",
    "attempts",
    "retry_index",
    "next_attempt_at",
    "lease_until",
    "lease_token",
    "manual",
    "held_reason",
    "created_at",
)


def queue_entry(message: Document) -> Document:
    return {key: message[key] for key in QUEUE_FIELDS if key in message}


def new_message_id() -> str:
    """A fresh `webhook-id` (Standard Webhooks style `msg_…`), kept for the message's life."""
    return "msg_" + secrets.token_hex(13)


def message_id_for(notification_id: str) -> str:
    """The `webhook-id` of a notification sent on its own at once (no grouping window):
    derived from its key, so a handler that stopped half-way recreates the same message."""
    return "msg_" + hashlib.sha256(notification_id.encode()).hexdigest()[:26]


async def ensure_indexes(db: AsyncDatabase[Document]) -> None:
    """Indexes for MongoDB (FerretDB v1 keeps them but serves only `_id` from them)."""
    await db[SUBSCRIPTIONS].create_index([("state", 1)])
    await db[NOTIFICATIONS].create_index([("subscription_id", 1), ("created_at", -1)])
    await db[PENDING].create_index([("state", 1), ("subscription_id", 1)])
    await db[QUEUE].create_index([("state", 1), ("next_attempt_at", 1)])
    await db[QUEUE].create_index([("subscription_id", 1)])
    await db[DELIVERIES].create_index([("subscription_id", 1), ("created_at", -1)])
    await db[ATTEMPTS].create_index([("subscription_id", 1), ("at", -1)])
    await db[SILENCES].create_index([("ends_at", 1)])
    await db[OPERATOR_EVENTS].create_index([("at", -1)])


def _duplicates_only(error: BulkWriteError) -> set[int]:
    """Indexes of the documents refused as duplicates; re-raises any other write error."""
    errors = error.details.get("writeErrors", [])
    if any(e.get("code") != DUPLICATE_KEY for e in errors):
        raise error
    return {int(e["index"]) for e in errors}


async def _insert_new(
    collection: AsyncCollection[Document], documents: Sequence[Document]
) -> list[Document]:
    """Insert, skipping documents whose `_id` exists; returns those inserted."""
    if not documents:
        return []
    try:
        await collection.insert_many(list(documents), ordered=False)
        return list(documents)
    except BulkWriteError as error:
        refused = _duplicates_only(error)
        return [doc for i, doc in enumerate(documents) if i not in refused]


async def _by_ids(collection: AsyncCollection[Document], ids: Iterable[str]) -> list[Document]:
    """Documents by `_id`, one indexed lookup each (an `$in` filter would scan on FerretDB)."""
    found = await asyncio.gather(*(collection.find_one({"_id": i}) for i in dict.fromkeys(ids)))
    return [doc for doc in found if doc is not None]


class SubscriptionStore:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._c = db[SUBSCRIPTIONS]

    async def insert(self, document: Document) -> None:
        await self._c.insert_one(document)

    async def get(self, subscription_id: str) -> Document | None:
        return await self._c.find_one({"_id": subscription_id})

    async def get_many(self, ids: Iterable[str]) -> dict[str, Document]:
        return {doc["_id"]: doc for doc in await _by_ids(self._c, ids)}

    async def list(
        self, *, limit: int, offset: int, state: str | None = None
    ) -> builtins.list[Document]:
        query: Document = {} if state is None else {"state": state}
        cursor = self._c.find(query).sort([("created_at", 1), ("_id", 1)])
        return [doc async for doc in cursor.skip(offset).limit(limit)]

    async def count(self, *, state: str | None = None) -> int:
        return await self._c.count_documents({} if state is None else {"state": state})

    async def active(self) -> builtins.list[Document]:
        return [doc async for doc in self._c.find({"state": "active"})]

    async def update(self, subscription_id: str, fields: Document) -> Document | None:
        return await self._c.find_one_and_update(
            {"_id": subscription_id}, {"$set": fields}, return_document=ReturnDocument.AFTER
        )

    async def replace_secrets(
        self,
        subscription_id: str,
        version: int,
        secrets_: builtins.list[Document],
        now: datetime,
    ) -> Document | None:
        """Optimistic: None when another rotation changed the secrets since `version`."""
        return await self._c.find_one_and_update(
            {"_id": subscription_id, "secrets_version": version},
            {"$set": {"secrets": secrets_, "secrets_version": version + 1, "updated_at": now}},
            return_document=ReturnDocument.AFTER,
        )

    async def set_state(
        self,
        subscription_id: str,
        state: str,
        *,
        reason: str | None,
        now: datetime,
        only_from: Sequence[str] | None = None,
        extra: Document | None = None,
    ) -> bool:
        """Move to `state` (only from `only_from` states when given); True when it moved."""
        query: Document = {"_id": subscription_id}
        if only_from is not None:
            query["state"] = {"$in": list(only_from)}
        result = await self._c.update_one(
            query,
            {"$set": {"state": state, "state_reason": reason, "updated_at": now, **(extra or {})}},
        )
        return result.modified_count == 1

    async def mark_failing(self, subscription_id: str, since: datetime) -> None:
        await self._c.update_one(
            {"_id": subscription_id, "failing_since": None}, {"$set": {"failing_since": since}}
        )

    async def mark_healthy(self, subscription_id: str) -> None:
        await self._c.update_one(
            {"_id": subscription_id, "failing_since": {"$ne": None}},
            {"$set": {"failing_since": None}},
        )

    async def delete(self, subscription_id: str) -> bool:
        result = await self._c.delete_one({"_id": subscription_id})
        return result.deleted_count == 1

    async def count_by_state(self) -> dict[str, int]:
        cursor = await self._c.aggregate([{"$group": {"_id": "$state", "n": {"$sum": 1}}}])
        return {doc["_id"]: int(doc["n"]) async for doc in cursor}


class NotificationStore:
    """The notification archive (insert-only: dedup by key), the live set of pending
    notifications, and each notification's fate (insert-only: in delivery X, or dropped)."""

    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._archive = db[NOTIFICATIONS]
        self._pending = db[PENDING]
        self._fates = db[MEMBERSHIPS]

    async def insert_new(self, documents: Sequence[Document]) -> list[Document]:
        """Record notifications, skipping keys already recorded; returns the new ones. Those
        `waiting` or `muted` join the live set. A key recorded by a handler that stopped
        before adding it to the live set (a crash between the two inserts) is added now, when
        the change is redelivered, so nothing is lost."""
        new = await _insert_new(self._archive, documents)
        new_ids = {doc["_id"] for doc in new}
        repeated = [doc["_id"] for doc in documents if doc["_id"] not in new_ids]
        live = [
            d
            for d in await _by_ids(self._archive, repeated)
            if d.get("state") in ("waiting", "muted")
        ]
        if live:
            decided = {f["_id"] for f in await _by_ids(self._fates, (d["_id"] for d in live))}
            live = [d for d in live if d["_id"] not in decided]
        fresh = [d for d in new if d.get("state") in ("waiting", "muted")]
        await _insert_new(self._pending, [*fresh, *live])
        return new

    async def get(self, notification_id: str) -> Document | None:
        return await self._archive.find_one({"_id": notification_id})

    async def waiting(self, subscription_ids: Iterable[str] | None = None) -> list[Document]:
        query: Document = {"state": "waiting"}
        if subscription_ids is not None:
            query["subscription_id"] = {"$in": list(set(subscription_ids))}
        return [doc async for doc in self._pending.find(query)]

    async def mute(
        self, notification_id: str, *, until: datetime, by: list[str], now: datetime
    ) -> bool:
        fields = {
            "state": "muted",
            "muted_until": until,
            "muted_by": by,
            "muted_at": now,
            "updated_at": now,
        }
        result = await self._pending.update_one(
            {"_id": notification_id, "state": {"$in": ["waiting", "muted"]}}, {"$set": fields}
        )
        return result.modified_count == 1

    async def muted_due(self, now: datetime) -> list[Document]:
        query = {"state": "muted", "muted_until": {"$lte": now}}
        return [doc async for doc in self._pending.find(query)]

    async def end_mutes_by(self, silence_id: str, now: datetime) -> int:
        """A silence ended early: what it muted is re-examined now."""
        result = await self._pending.update_many(
            {"state": "muted", "muted_by": silence_id}, {"$set": {"muted_until": now}}
        )
        return result.modified_count

    async def release(self, notification_id: str, now: datetime) -> bool:
        fields = {
            "state": "waiting",
            "immediate": True,
            "arrived_at": now,
            "released_at": now,
            "updated_at": now,
        }
        result = await self._pending.update_one(
            {"_id": notification_id, "state": "muted"}, {"$set": fields}
        )
        return result.modified_count == 1

    async def drop(self, notification_id: str, reason: str, now: datetime) -> bool:
        """No longer relevant: its fate is 'dropped' (unless a delivery took it first)."""
        fate = {"_id": notification_id, "delivery_id": None, "dropped": reason, "at": now}
        if not await _insert_new(self._fates, [fate]):
            return False
        await self._pending.delete_one({"_id": notification_id})
        return True

    async def claim(
        self, documents: Sequence[Document], delivery_id: str, now: datetime
    ) -> list[Document]:
        """Take pending notifications into the delivery `delivery_id`; returns those taken.

        Each notification's fate is an insert keyed by the notification's id, so when
        instances race, each notification goes to exactly one delivery (or is dropped).
        """
        fates = [{"_id": d["_id"], "delivery_id": delivery_id, "at": now} for d in documents]
        won_ids = {f["_id"] for f in await _insert_new(self._fates, fates)}
        won = [d for d in documents if d["_id"] in won_ids]
        if won:
            await self._pending.update_many(
                {"_id": {"$in": sorted(won_ids)}},
                {"$set": {"state": "claimed", "delivery_id": delivery_id, "claimed_at": now}},
            )
        return won

    async def adopt_orphans(self, ids: Sequence[str], before: datetime) -> int:
        """Waiting notifications that already have a fate older than `before` belong to a
        delivery whose creator stopped half-way (or were dropped): settle them (recovery)."""
        adopted = 0
        for fate in await _by_ids(self._fates, ids):
            if fate["at"] > before:
                continue
            if fate.get("delivery_id") is None:
                dropped = await self._pending.delete_one({"_id": fate["_id"]})
                adopted += dropped.deleted_count
                continue
            result = await self._pending.update_one(
                {"_id": fate["_id"], "state": "waiting"},
                {
                    "$set": {
                        "state": "claimed",
                        "delivery_id": fate["delivery_id"],
                        "claimed_at": fate["at"],
                    }
                },
            )
            adopted += result.modified_count
        return adopted

    async def in_delivery(self, delivery_id: str) -> list[Document]:
        return [doc async for doc in self._pending.find({"delivery_id": delivery_id})]

    async def stale_claims(self, before: datetime) -> list[Document]:
        query = {"state": "claimed", "claimed_at": {"$lte": before}}
        return [doc async for doc in self._pending.find(query)]

    async def mark_batched(self, ids: Sequence[str]) -> None:
        """The delivery exists: the notifications leave the live set."""
        await self._pending.delete_many({"_id": {"$in": list(ids)}})

    async def for_subscription(
        self, subscription_id: str, *, state: str | None, limit: int | None
    ) -> list[Document]:
        """The subscription's notifications, newest first, with their current state (from the
        live set, their fate, or the archive). An admin query: it scans."""
        query: Document = {"subscription_id": subscription_id}
        archived = [
            doc async for doc in self._archive.find(query).sort([("created_at", -1), ("_id", 1)])
        ]
        live = {doc["_id"]: doc async for doc in self._pending.find(query)}
        ids = {doc["_id"] for doc in archived}
        fates = {f["_id"]: f async for f in self._fates.find({}) if f["_id"] in ids}
        result = []
        for doc in archived:
            current = {**doc, **live.get(doc["_id"], {})}
            fate = fates.get(doc["_id"])
            if doc["_id"] not in live and fate is not None:
                if fate.get("delivery_id") is None:
                    current.update(state="dropped", dropped_reason=fate.get("dropped"))
                else:
                    current.update(state="batched", delivery_id=fate["delivery_id"])
            if state is None or current["state"] == state:
                result.append(current)
            if limit is not None and len(result) >= limit:
                break
        return result

    async def count_by_state(self) -> dict[str, int]:
        cursor = await self._pending.aggregate([{"$group": {"_id": "$state", "n": {"$sum": 1}}}])
        return {doc["_id"]: int(doc["n"]) async for doc in cursor}


class DeliveryQueue:
    """The live queue of deliveries to send, the message archive (insert-only content), the
    outcomes (insert-only final states) and the attempt log (insert-only)."""

    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._queue = db[QUEUE]
        self._archive = db[DELIVERIES]
        self._outcomes = db[OUTCOMES]
        self._attempts = db[ATTEMPTS]
        self._fences = db[FENCES]

    async def create(self, document: Document) -> bool:
        """Archive and queue a new message; False when it already existed (recovery)."""
        return bool(await self.create_many([document]))

    async def create_many(self, documents: Sequence[Document]) -> list[Document]:
        """Archive and queue new messages (two writes for any number); returns those that did
        not exist yet. Archived first: a queued message always has its body."""
        archived = await _insert_new(self._archive, documents)
        await _insert_new(self._queue, [queue_entry(d) for d in documents])
        return archived

    async def ensure_created(self, documents: Sequence[Document]) -> int:
        """For messages a creator may have left half-made (it stopped between the archive and
        the queue): create what is missing. Returns how many were (re)queued. Used only in
        recovery (a redelivered status change, a stale claim)."""
        created = 0
        for doc in documents:
            if await self._archive.find_one({"_id": doc["_id"]}) is None:
                created += len(await self.create_many([doc]))
            elif await self.state_of(doc["_id"]) is None:
                # Archived, neither queued nor finished: never sent, so queued as new.
                created += len(await _insert_new(self._queue, [queue_entry(doc)]))
        return created

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

    async def queued(self, delivery_id: str) -> Document | None:
        return await self._queue.find_one({"_id": delivery_id})

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
            fence = {
                "_id": f"{delivery['_id']}#{number}",
                "message_id": delivery["_id"],
                "subscription_id": delivery["subscription_id"],
                "attempt": number,
                "at": now,
                "lease_until": now + lease,
                "manual": bool(delivery.get("manual")),
            }
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
                    await _insert_new(self._attempts, [self.log_entry(existing, interrupted)])
                fresh = await self.queued(delivery["_id"])
                if fresh is None or not _due(fresh, now):
                    return None
                number = max(number, int(fresh["attempts"])) + 1
                continue
            fresh = await self.queued(delivery["_id"])
            if fresh is None or not _due(fresh, now) or int(fresh["attempts"]) >= number:
                await self._fences.delete_one({"_id": fence["_id"]})
                return None
            return fence, fresh
        return None

    @staticmethod
    def log_entry(fence: Document, outcome: Document) -> Document:
        entry = {key: fence[key] for key in ("_id", "message_id", "subscription_id", "attempt")}
        return {
            **entry,
            "at": fence["at"],
            "manual": fence.get("manual", False),
            "status_code": None,
            "latency_ms": 0.0,
            "error": None,
            **outcome,
        }

    async def finish_attempt(self, fence: Document, outcome: Document) -> None:
        """Log the attempt with its outcome (status code, latency, result, error)."""
        await _insert_new(self._attempts, [self.log_entry(fence, outcome)])

    async def interrupt(self, fence: Document, now: datetime, reason: str) -> None:
        """Stopping mid-attempt: log it and end the fence's lease, so the next instance retries
        at once (an update of a growing collection: only ever at shutdown)."""
        await self.finish_attempt(fence, {"result": "interrupted", "error": reason})
        await self._fences.update_one({"_id": fence["_id"]}, {"$set": {"lease_until": now}})

    async def update_delivery(
        self, delivery: Document, update: Document, *, attempt: int | None = None
    ) -> bool:
        """Apply the outcome of attempt number `attempt` (never over a later attempt's), or,
        without an attempt, move a still pending delivery to another state. A final state
        (delivered, failed, cancelled) takes the message off the queue and is recorded as an
        outcome."""
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
        attempts = int(update.get("attempts") or delivery.get("attempts") or 0)
        outcome = {k: v for k, v in update.items() if k != "lease_until"}
        outcome.update(
            _id=f"{delivery['_id']}#{attempts}#{state}",
            message_id=delivery["_id"],
            subscription_id=delivery["subscription_id"],
            at=update.get("last_attempt_at") or update.get("lease_until"),
            attempts=attempts,
            state=state,
        )
        await _insert_new(self._outcomes, [outcome])
        return True

    async def hold(self, delivery: Document, reason: str, now: datetime) -> None:
        await self.update_delivery(
            delivery, {"state": "held", "held_reason": reason, "lease_until": now}
        )

    async def release_lease(self, delivery: Document, now: datetime) -> None:
        await self._queue.update_one(
            {"_id": delivery["_id"], "state": "pending"},
            {"$set": {"lease_until": now, "lease_token": None}},
        )

    async def get(self, delivery_id: str) -> Document | None:
        """A message's content from the archive."""
        return await self._archive.find_one({"_id": delivery_id})

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
        fields: Document = {
            "state": "pending",
            "retry_index": 0,
            "next_attempt_at": now,
            "lease_until": now,
            "lease_token": None,
            "held_reason": None,
        }
        if manual:
            fields["manual"] = True
        requeued = {**doc, **fields}
        await self._queue.replace_one({"_id": doc["_id"]}, queue_entry(requeued), upsert=True)
        return requeued

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
            query = {"$and": [query, _before(*after)]}
        cursor = self._attempts.find(query).sort([("at", -1), ("_id", -1)])
        return [doc async for doc in cursor.limit(limit)]

    async def count_by_state(self) -> dict[str, int]:
        """Queue sizes (pending, held): the live queue only."""
        cursor = await self._queue.aggregate([{"$group": {"_id": "$state", "n": {"$sum": 1}}}])
        return {doc["_id"]: int(doc["n"]) async for doc in cursor}

    async def count_retrying(self) -> int:
        """Pending messages whose last attempt failed (waiting for a retry); a redelivery
        starts its retries afresh."""
        return await self._queue.count_documents({"state": "pending", "retry_index": {"$gt": 0}})


def _before(at: datetime, key: str) -> Document:
    """Items after (`at`, `key`) in a newest-first stream sorted by time then id, descending."""
    return {"$or": [{"at": {"$lt": at}}, {"at": at, "_id": {"$lt": key}}]}


def _due(delivery: Document, now: datetime) -> bool:
    return bool(delivery["state"] == "pending" and delivery["next_attempt_at"] <= now)


class SilenceStore:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._c = db[SILENCES]

    async def insert(self, document: Document) -> None:
        await self._c.insert_one(document)

    async def get(self, silence_id: str) -> Document | None:
        return await self._c.find_one({"_id": silence_id})

    async def list(
        self, *, in_force_at: datetime | None, limit: int, offset: int = 0
    ) -> builtins.list[Document]:
        query = self._in_force(in_force_at)
        cursor = self._c.find(query).sort([("created_at", -1), ("_id", 1)])
        return [doc async for doc in cursor.skip(offset).limit(limit)]

    async def count(self, *, in_force_at: datetime | None) -> int:
        return await self._c.count_documents(self._in_force(in_force_at))

    @staticmethod
    def _in_force(at: datetime | None) -> Document:
        return {} if at is None else {"$or": [{"ends_at": None}, {"ends_at": {"$gt": at}}]}

    async def end(self, silence_id: str, now: datetime) -> Document | None:
        """End a silence now (kept as history): ends_at becomes now unless already past."""
        doc = await self._c.find_one({"_id": silence_id})
        if doc is None:
            return None
        if doc.get("ends_at") is None or doc["ends_at"] > now:
            starts_at = doc.get("starts_at")
            fields: Document = {"ends_at": now, "ended_early_at": now}
            if starts_at is not None and starts_at >= now:
                fields["starts_at"] = now - timedelta(milliseconds=1)
            await self._c.update_one({"_id": silence_id}, {"$set": fields})
            doc.update(fields)
        return doc


class KpiStateStore:
    """Per KPI: its latest status change as this service saw it, and the reminders of its
    open episode (``subs``: subscription id → notification id, kind, episode, due time,
    reminders sent)."""

    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._c = db[KPI_STATES]

    async def record(self, documents: Sequence[Document]) -> None:
        """Keep the newest change per KPI (`changed_at`), whatever order they arrive in, with
        the reminders it starts (`reminders`: subscription id → entry) or ending them all
        (`close_reminders`).

        One KPI's changes come from one partition, so one consumer writes a KPI at a time:
        read, compare, then insert or update by `_id` alone (a filter with more than `_id`
        that matches nothing scans the collection on FerretDB).
        """
        newest: dict[str, Document] = {}
        for doc in documents:
            kept = newest.get(doc["_id"])
            if kept is None or doc["changed_at"] >= kept["changed_at"]:
                newest[doc["_id"]] = doc

        async def upsert(doc: Document) -> None:
            fields = {k: v for k, v in doc.items() if k not in ("reminders", "close_reminders")}
            entries = {} if doc.get("close_reminders") else dict(doc.get("reminders") or {})
            stored = await self._c.find_one({"_id": doc["_id"]})
            if stored is None:
                try:
                    await self._c.insert_one({**fields, "subs": entries})
                    return
                except DuplicateKeyError:
                    stored = await self._c.find_one({"_id": doc["_id"]})
            if stored is None or stored["changed_at"] > doc["changed_at"]:
                return  # a newer change is stored already
            update: Document = {"$set": fields}
            if doc.get("close_reminders"):
                update["$set"]["subs"] = {}
            for subscription_id, entry in entries.items():
                update["$set"][f"subs.{subscription_id}"] = entry
            await self._c.update_one({"_id": doc["_id"]}, update)

        await asyncio.gather(*(upsert(doc) for doc in newest.values()))

    async def get(self, kpi_id: str) -> Document | None:
        return await self._c.find_one({"_id": kpi_id})

    async def get_many(self, kpi_ids: Iterable[str]) -> dict[str, Document]:
        return {doc["_id"]: doc for doc in await _by_ids(self._c, kpi_ids)}

    async def with_reminders(self) -> list[Document]:
        """KPIs with reminders to keep (a scan of one document per KPI)."""
        return [doc async for doc in self._c.find({}) if doc.get("subs")]

    async def stop_reminder(self, kpi_id: str, subscription_id: str) -> None:
        await self._c.update_one({"_id": kpi_id}, {"$unset": {f"subs.{subscription_id}": ""}})

    async def advance_reminder(
        self, kpi_id: str, subscription_id: str, *, number: int, due_at: datetime
    ) -> None:
        await self._c.update_one(
            {"_id": kpi_id},
            {
                "$set": {
                    f"subs.{subscription_id}.due_at": due_at,
                    f"subs.{subscription_id}.reminders": number,
                }
            },
        )


class OperatorEvents:
    """Events an operator must see (an endpoint disabled), kept in MongoDB and logged."""

    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._c = db[OPERATOR_EVENTS]

    async def record(self, document: Document) -> bool:
        """False when this event was already recorded (same deterministic id)."""
        try:
            await self._c.insert_one(document)
        except DuplicateKeyError:
            return False
        return True

    async def list(
        self,
        *,
        limit: int,
        subscription_id: str | None = None,
        after: tuple[datetime, str] | None = None,
    ) -> builtins.list[Document]:
        query: Document = {} if subscription_id is None else {"subscription_id": subscription_id}
        if after is not None:
            query = {"$and": [query, _before(*after)]}
        cursor = self._c.find(query).sort([("at", -1), ("_id", -1)]).limit(limit)
        return [doc async for doc in cursor]


class ReadCache:
    """Subscriptions and silences change rarely and are read for every status change and
    every attempt: they are cached for `ttl_s` (one second by default). Writes through this
    process's API invalidate the cache at once; another instance's writes are seen within
    `ttl_s`."""

    def __init__(
        self, subscriptions: SubscriptionStore, silences: SilenceStore, ttl_s: float = 1.0
    ) -> None:
        self._subscriptions = subscriptions
        self._silences = silences
        self._ttl = ttl_s
        self._active: tuple[float, builtins.list[Document]] | None = None
        self._in_force: tuple[float, builtins.list[Document]] | None = None
        self._by_id: dict[str, tuple[float, Document | None]] = {}

    def invalidate(self) -> None:
        self._active = None
        self._in_force = None
        self._by_id.clear()

    def _fresh(self, loaded_at: float) -> bool:
        return asyncio.get_running_loop().time() - loaded_at < self._ttl

    async def active_subscriptions(self) -> builtins.list[Document]:
        if self._active is None or not self._fresh(self._active[0]):
            loaded_at = asyncio.get_running_loop().time()
            self._active = (loaded_at, await self._subscriptions.active())
        return self._active[1]

    async def subscription(self, subscription_id: str) -> Document | None:
        cached = self._by_id.get(subscription_id)
        if cached is None or not self._fresh(cached[0]):
            loaded_at = asyncio.get_running_loop().time()
            cached = (loaded_at, await self._subscriptions.get(subscription_id))
            self._by_id[subscription_id] = cached
        return cached[1]

    async def silences(self, now: datetime) -> builtins.list[Document]:
        """Silences that can still mute something (loaded with a margin: the cache may be
        read a little later than it was loaded)."""
        if self._in_force is None or not self._fresh(self._in_force[0]):
            loaded_at = asyncio.get_running_loop().time()
            docs = await self._silences.list(in_force_at=now, limit=100_000)
            self._in_force = (loaded_at, docs)
        return [d for d in self._in_force[1] if d.get("ends_at") is None or d["ends_at"] > now]

"""MongoDB persistence of the alerts service, shaped for FerretDB v1 as well as MongoDB (one
module per store beside this one; this one holds the collection names and shared helpers).

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
from collections.abc import Iterable, Sequence
from datetime import datetime

from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError

from services.alerts.ports import Document

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

DUPLICATE_KEY = 11000


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


async def insert_new(
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


async def by_ids(collection: AsyncCollection[Document], ids: Iterable[str]) -> list[Document]:
    """Documents by `_id`, one indexed lookup each (an `$in` filter would scan on FerretDB)."""
    found = await asyncio.gather(*(collection.find_one({"_id": i}) for i in dict.fromkeys(ids)))
    return [doc for doc in found if doc is not None]


def newest_first_after(at: datetime, key: str) -> Document:
    """Items after (`at`, `key`) in a newest-first stream sorted by time then id, descending."""
    return {"$or": [{"at": {"$lt": at}}, {"at": at, "_id": {"$lt": key}}]}

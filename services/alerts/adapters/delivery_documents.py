"""The delivery documents as stored (archive, queue entry, fence, attempt log entry, outcome):
shared by the MongoDB adapters (deliveries.py) and the in-memory ones (memory.py), so both keep
the same shapes. Persistence detail: nothing outside adapters/ sees these fields by name."""

from __future__ import annotations

from datetime import datetime, timedelta

from services.alerts.ports import Document, NewDelivery

# Why an attempt found with its lease over and no outcome is logged as interrupted.
LEASE_ENDED_UNRECORDED = (
    "no outcome was recorded before the attempt's lease ended (its worker stopped or lost "
    "the database)"
)
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


def delivery_document(delivery: NewDelivery) -> Document:
    """A new message as archived and queued: pending, due and unleased at its creation."""
    return {
        "_id": delivery.message_id,
        "subscription_id": delivery.subscription_id,
        "type": delivery.type,
        "body": delivery.body,
        "notification_ids": list(delivery.notification_ids),
        "kinds": list(delivery.kinds),
        "kpi_ids": list(delivery.kpi_ids),
        "changed_at": list(delivery.changed_at),
        "state": "pending",
        "attempts": 0,
        "retry_index": 0,
        "next_attempt_at": delivery.created_at,
        "lease_until": delivery.created_at,
        "lease_token": None,
        "created_at": delivery.created_at,
    }


def requeued(doc: Document, now: datetime, *, manual: bool) -> Document:
    """A message queued again, now, with a fresh retry schedule and no lease."""
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
    return {**doc, **fields}


def fence_document(delivery: Document, number: int, now: datetime, lease: timedelta) -> Document:
    """Attempt `number` of a message, inserted before it is sent (`<webhook-id>#<n>`)."""
    return {
        "_id": f"{delivery['_id']}#{number}",
        "message_id": delivery["_id"],
        "subscription_id": delivery["subscription_id"],
        "attempt": number,
        "at": now,
        "lease_until": now + lease,
        "manual": bool(delivery.get("manual")),
    }


def log_entry(fence: Document, outcome: Document) -> Document:
    """An attempt as logged: its fence's identity and time, and its outcome."""
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


def outcome_document(delivery: Document, update: Document) -> Document:
    """A final state (delivered, failed, cancelled) as recorded, one per message and attempt."""
    state = update.get("state")
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
    return outcome


def is_due(delivery: Document, now: datetime) -> bool:
    return bool(delivery["state"] == "pending" and delivery["next_attempt_at"] <= now)

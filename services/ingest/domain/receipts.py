"""When may an event be published, given what its earlier submissions left behind? Pure.

The receipt protocol (adapters/receipts.py keeps it in MongoDB with inserts and reads by ``_id``
only, which FerretDB serves in constant time; updates and deletes would scan the collection):

1. **Claim** attempt *n* of an event by inserting ``(source, id, n)`` — the unique ``_id`` lets
   exactly one of several concurrent submissions win. The claim names the submission's batch.
2. **Publish** the claimed events and wait for the broker's acknowledgement.
3. Events the broker did not acknowledge are **released** (a marker per claim); *then*, if any
   event was acknowledged, the batch is marked **accepted** (one document per batch).

A later submission of the same event walks its attempts: a released or **stale** claim (pending
longer than the takeover age: its owner crashed between claim and acknowledgement) lets it claim
the next attempt and publish; an accepted one makes it a duplicate (200, not published again); a
live pending one means it is in flight (409, retry shortly). A stale takeover may publish an event
whose first publish did in fact reach Kafka just before a crash: at worst a duplicate record, which
the consumers drop by source + id; never a lost event.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta
from enum import StrEnum


class ClaimState(StrEnum):
    ACCEPTED = "accepted"  # the event reached Kafka: a new submission is a duplicate
    RELEASED = "released"  # the publish failed: the next attempt may be claimed
    STALE = "stale"  # pending past the takeover age: the next attempt may be claimed
    PENDING = "pending"  # being published right now by another request


def claim_state(
    *,
    released: bool,
    batch_accepted: bool,
    claimed_at: datetime,
    now: datetime,
    takeover_after: timedelta,
) -> ClaimState:
    # Release markers are written before the batch is marked accepted, so a released claim in an
    # accepted batch is one event of that batch that did not reach Kafka.
    if released:
        return ClaimState.RELEASED
    if batch_accepted:
        return ClaimState.ACCEPTED
    if now - claimed_at >= takeover_after:
        return ClaimState.STALE
    return ClaimState.PENDING


def new_batch_id(now: datetime) -> str:
    """A unique batch id that carries its claim time (milliseconds, hex) in its first 12
    characters, so a claim document needs no time field of its own: one is written per event."""
    return f"{round(now.timestamp() * 1000):012x}{secrets.token_hex(6)}"


def batch_time(batch_id: str) -> datetime:
    return datetime.fromtimestamp(int(batch_id[:12], 16) / 1000, UTC)

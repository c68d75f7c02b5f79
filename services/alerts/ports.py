"""The ports the alerts use cases talk to, and the records they exchange with them.

The MongoDB adapters (adapters/) and the in-memory ones (adapters/memory.py) implement these;
the service layer (service/) imports only this module, the domain and shared helpers that pull
in no infrastructure library.

Subscriptions travel as `Subscription` records, silences as `SilenceRecord`s and a new delivery
as `NewDelivery`: their persistence fields (`_id`, the secrets' version, lease expiry and token,
queue state) are the adapters' business; so do operator events (`OperatorEvent`). Notifications,
KPI states, queued deliveries and attempts still travel as documents (`Document`, field names
as stored).
"""

from __future__ import annotations

import builtins
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal, Protocol

from services.alerts.domain.notifications import SubscriptionFilter
from services.alerts.domain.silences import Silence

# A stored record as the stores hand it over (its id under `_id`).
Document = dict[str, Any]


# Records -----------------------------------------------------------------------------------


SubscriptionState = Literal["active", "paused", "disabled"]


@dataclass(frozen=True, slots=True)
class SigningSecret:
    """A signing secret; it signs until `expires_at` (None: until the next rotation)."""

    secret: str
    created_at: datetime
    expires_at: datetime | None = None

    def signs_at(self, now: datetime) -> bool:
        return self.expires_at is None or self.expires_at > now


@dataclass(frozen=True, slots=True)
class Subscription:
    """A webhook target, what it wants to hear about, and how its messages are signed."""

    id: str
    url: str
    filter: SubscriptionFilter
    description: str | None
    state: SubscriptionState
    state_reason: str | None
    secrets: tuple[SigningSecret, ...]
    # Rotations are optimistic: a rotation applies only over the version it read.
    secrets_version: int
    # Since when every attempt failed (None: the endpoint is healthy).
    failing_since: datetime | None
    created_at: datetime
    updated_at: datetime | None = None
    disabled_at: datetime | None = None

    def signing_secrets(self, now: datetime) -> list[str]:
        """The secrets that sign now: the current one and, during an overlap, older ones."""
        return [s.secret for s in self.secrets if s.signs_at(now)]


@dataclass(frozen=True, slots=True)
class SubscriptionEdit:
    """What an update changes: only the fields named in `changed` (url, filter, description)."""

    changed: frozenset[str]
    url: str | None = None
    filter: SubscriptionFilter | None = None
    description: str | None = None


@dataclass(frozen=True, slots=True)
class SilenceRecord:
    """A silence as kept: the rule (the domain's `Silence`) and its history."""

    silence: Silence
    reason: str | None
    created_at: datetime
    ended_early_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class OperatorEvent:
    """Something an operator must see (an endpoint disabled); one per `id`."""

    # Deterministic (kind, subscription, failing period): recording it twice records it once.
    id: str
    at: datetime
    kind: str
    reason: str
    subscription_id: str | None = None
    url: str | None = None
    # What the endpoint answered last, when the event is about one.
    last_status_code: int | None = None
    last_error: str | None = None


@dataclass(frozen=True, slots=True)
class NewDelivery:
    """One webhook message to create: its content and where it goes, due at `created_at`."""

    message_id: str
    subscription_id: str
    type: str
    body: str
    notification_ids: tuple[str, ...]
    kinds: tuple[str, ...]
    kpi_ids: tuple[str, ...]
    changed_at: tuple[datetime, ...]
    created_at: datetime


@dataclass(frozen=True, slots=True)
class SendResult:
    """What one webhook POST came to."""

    status_code: int | None
    latency_s: float
    error: str | None
    retry_after_s: float | None
    # success, http_error, timeout (the total deadline passed), network_error (the connection
    # failed or broke) or refused (the SSRF guard)
    result: str
    # Raw response body bytes read (at most the cap) and whether the rest was left unread.
    response_bytes: int = 0
    response_truncated: bool = False

    @property
    def succeeded(self) -> bool:
        return self.result == "success"


# Ports -------------------------------------------------------------------------------------


class WebhookSender(Protocol):
    """Sends one signed webhook, over within the deadline whatever the receiver does."""

    @property
    def deadline_s(self) -> float: ...

    async def send(
        self, url: str, body: bytes, headers: dict[str, str], *, deadline_s: float | None = None
    ) -> SendResult: ...


class Subscriptions(Protocol):
    async def insert(self, subscription: Subscription) -> None: ...
    async def get(self, subscription_id: str) -> Subscription | None: ...
    async def list(
        self, *, limit: int, offset: int, state: str | None = None
    ) -> builtins.list[Subscription]:
        """A page, oldest first."""
        ...

    async def count(self, *, state: str | None = None) -> int: ...
    async def active(self) -> builtins.list[Subscription]: ...
    async def update(
        self, subscription_id: str, edit: SubscriptionEdit, now: datetime
    ) -> Subscription | None: ...
    async def replace_secrets(
        self,
        subscription_id: str,
        version: int,
        secrets_: Sequence[SigningSecret],
        now: datetime,
    ) -> Subscription | None:
        """None when another rotation changed the secrets since `version`."""
        ...

    async def set_state(
        self,
        subscription_id: str,
        state: SubscriptionState,
        *,
        reason: str | None,
        now: datetime,
        only_from: Sequence[SubscriptionState] | None = None,
        healthy: bool = False,
        disabled_at: datetime | None = None,
    ) -> bool:
        """Move to `state` (only from `only_from` states when given); True when it moved.
        `healthy` also forgets the failing period; `disabled_at` records when it was disabled."""
        ...

    async def mark_failing(self, subscription_id: str, since: datetime) -> None: ...
    async def mark_healthy(self, subscription_id: str) -> None: ...
    async def delete(self, subscription_id: str) -> bool: ...
    async def count_by_state(self) -> dict[str, int]: ...


class Notifications(Protocol):
    """The notification archive (dedup by key), the live set of pending notifications, and
    each notification's fate (in delivery X, or dropped)."""

    async def insert_new(self, documents: Sequence[Document]) -> list[Document]: ...
    async def get(self, notification_id: str) -> Document | None: ...
    async def waiting(self, subscription_ids: Iterable[str] | None = None) -> list[Document]: ...
    async def mute(
        self, notification_id: str, *, until: datetime, by: list[str], now: datetime
    ) -> bool: ...
    async def muted_due(self, now: datetime) -> list[Document]: ...
    async def end_mutes_by(self, silence_id: str, now: datetime) -> int: ...
    async def release(self, notification_id: str, now: datetime) -> bool: ...
    async def drop(self, notification_id: str, reason: str, now: datetime) -> bool: ...
    async def claim(
        self, documents: Sequence[Document], delivery_id: str, now: datetime
    ) -> list[Document]: ...
    async def adopt_orphans(self, ids: Sequence[str], before: datetime) -> int: ...
    async def in_delivery(self, delivery_id: str) -> list[Document]: ...
    async def stale_claims(self, before: datetime) -> list[Document]: ...
    async def mark_batched(self, ids: Sequence[str]) -> None: ...
    async def for_subscription(
        self, subscription_id: str, *, state: str | None, limit: int | None
    ) -> list[Document]: ...
    async def count_by_state(self) -> dict[str, int]: ...


class DeliveryQueue(Protocol):
    """The messages (insert-only content) and the live queue of those still to send."""

    async def create(self, delivery: NewDelivery) -> bool: ...
    async def create_many(self, deliveries: Sequence[NewDelivery]) -> list[NewDelivery]: ...
    async def ensure_created(self, deliveries: Sequence[NewDelivery]) -> int: ...
    async def get(self, delivery_id: str) -> Document | None: ...
    async def queued(self, delivery_id: str) -> Document | None: ...
    async def state_of(self, delivery_id: str) -> str | None: ...
    async def update_delivery(
        self, delivery: Document, update: Document, *, at: datetime, attempt: int | None = None
    ) -> bool:
        """Apply the outcome of attempt number `attempt` (never over a later attempt's), or,
        without one, move a still pending delivery to another state; either ends its lease at
        `at`. A final state (delivered, failed, cancelled) takes it off the queue."""

    async def hold(self, delivery: Document, reason: str, now: datetime) -> None: ...
    async def for_subscription(
        self,
        subscription_id: str,
        *,
        state: str | None,
        since: datetime | None,
        until: datetime | None,
        limit: int | None,
    ) -> list[Document]: ...
    async def release_held(self, subscription_id: str, now: datetime) -> int: ...
    async def cancel_for(self, subscription_id: str, now: datetime) -> int: ...
    async def redeliver(self, delivery_id: str, now: datetime) -> Document | None: ...
    async def redeliver_failed(
        self, subscription_id: str, since: datetime, until: datetime, now: datetime
    ) -> int: ...
    async def count_by_state(self) -> dict[str, int]: ...
    async def count_retrying(self) -> int: ...


class DeliveryLeases(Protocol):
    """Who sends a due delivery now: leases on the queue and a fence per attempt."""

    async def lease_batch(
        self,
        now: datetime,
        lease: timedelta,
        *,
        limit: int,
        exclude_subscriptions: Iterable[str] = (),
        exclude_ids: Iterable[str] = (),
    ) -> list[Document]: ...
    async def release_lease(self, delivery: Document, now: datetime) -> None: ...
    async def start_attempt(
        self, delivery: Document, now: datetime, lease: timedelta, *, tries: int = 3
    ) -> tuple[Document, Document] | None: ...
    async def interrupt(self, fence: Document, now: datetime, reason: str) -> None: ...


class DeliveryLog(Protocol):
    """Every attempt made, with its outcome (status code, latency, result, error)."""

    async def finish_attempt(self, fence: Document, outcome: Document) -> None: ...
    async def attempts(
        self,
        subscription_id: str,
        *,
        limit: int,
        since: datetime | None = None,
        message_id: str | None = None,
        after: tuple[datetime, str] | None = None,
    ) -> list[Document]: ...


class Silences(Protocol):
    async def insert(self, record: SilenceRecord) -> None: ...
    async def get(self, silence_id: str) -> SilenceRecord | None: ...
    async def list(
        self, *, in_force_at: datetime | None, limit: int, offset: int = 0
    ) -> builtins.list[SilenceRecord]:
        """Newest first; with `in_force_at`, only those not ended by then."""
        ...

    async def count(self, *, in_force_at: datetime | None) -> int: ...
    async def end(self, silence_id: str, now: datetime) -> SilenceRecord | None:
        """End it now (kept as history), unless already over; None when there is none."""
        ...


class KpiStates(Protocol):
    """Per KPI: its latest status change and the reminders of its open episode."""

    async def record(self, documents: Sequence[Document]) -> None: ...
    async def get(self, kpi_id: str) -> Document | None: ...
    async def get_many(self, kpi_ids: Iterable[str]) -> dict[str, Document]: ...
    async def with_reminders(self) -> list[Document]: ...
    async def stop_reminder(self, kpi_id: str, subscription_id: str) -> None: ...
    async def advance_reminder(
        self, kpi_id: str, subscription_id: str, *, number: int, due_at: datetime
    ) -> None: ...


class OperatorEvents(Protocol):
    async def record(self, event: OperatorEvent) -> bool:
        """False when an event with this id was recorded already."""
        ...

    async def list(
        self,
        *,
        limit: int,
        subscription_id: str | None = None,
        after: tuple[datetime, str] | None = None,
    ) -> builtins.list[OperatorEvent]:
        """Newest first (by time, then id); `after`: those after that (time, id)."""
        ...


class ReadCache(Protocol):
    """Subscriptions and silences as read for every change and attempt (may lag writes of
    another instance a little; this instance's writes invalidate it)."""

    def invalidate(self) -> None: ...
    async def active_subscriptions(self) -> list[Subscription]: ...
    async def subscription(self, subscription_id: str) -> Subscription | None: ...
    async def silences(self, now: datetime) -> list[Silence]: ...


@dataclass(frozen=True)
class Stores:
    """Every store the use cases need, as ports."""

    subscriptions: Subscriptions
    notifications: Notifications
    deliveries: DeliveryQueue
    leases: DeliveryLeases
    log: DeliveryLog
    silences: Silences
    kpi_states: KpiStates
    operator_events: OperatorEvents
    cache: ReadCache

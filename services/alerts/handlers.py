"""Alerts use cases: status change → notifications → grouped deliveries → signed webhooks.

1. `StatusChangeHandler` (the status topic's consumer, via the shared runner) records each KPI's
   latest change, and one notification per matching subscription, KPI episode and kind; a
   redelivered or repeated change finds its key taken and is counted as a duplicate.
2. `Batcher` closes grouping windows: each subscription's notifications of one window become
   one delivery (one webhook-id); notifications a silence mutes are held back (recorded, state
   ``muted``) and released when no silence holds them any more, if still relevant. It also
   sends reminders for episodes that stay open and finishes deliveries whose creating
   instance died half-way.
3. `DeliveryWorker` leases due deliveries from MongoDB and sends them concurrently (bounded
   overall and per subscription, so one failing endpoint cannot delay the others), signs them,
   logs every attempt, schedules retries, and disables endpoints that answer 410 or keep failing.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import structlog

from services.alerts.adapters.store import (
    DeliveryQueue,
    Document,
    KpiStateStore,
    NotificationStore,
    OperatorEvents,
    ReadCache,
    SilenceStore,
    SubscriptionStore,
    message_id_for,
    new_message_id,
)
from services.alerts.adapters.webhook_sender import SendResult, WebhookSender
from services.alerts.domain.endpoint_health import EndpointVerdict, after_attempt
from services.alerts.domain.grouping import Waiting, ready_groups
from services.alerts.domain.notifications import (
    NotificationKind,
    SubscriptionFilter,
    closes_episode,
    divergence_key,
    matches,
    notification_key,
    reminder_key,
    select,
    select_divergence,
    still_relevant,
)
from services.alerts.domain.payloads import (
    Change,
    NotifiedChange,
    encode,
    subject_of,
    webhook_payload,
)
from services.alerts.domain.reminders import (
    first_reminder_at,
    following_reminder_at,
    reminder_kind,
)
from services.alerts.domain.retry import next_attempt_at
from services.alerts.domain.signing import webhook_headers
from services.alerts.domain.silences import Silence, Target, muted_until, muting
from services.alerts.metrics import AlertsMetrics
from shared.consumer import Rejection
from shared.events.cloudevents import CloudEvent
from shared.events.contracts import KpiStatusChanged, MeasureDivergenceChanged
from shared.logs import caused_by, url_origin

log = structlog.stdlib.get_logger("alerts")

Clock = Callable[[], datetime]


def _nothing() -> None:
    return None


@dataclass(frozen=True)
class Stores:
    subscriptions: SubscriptionStore
    notifications: NotificationStore
    deliveries: DeliveryQueue
    silences: SilenceStore
    kpi_states: KpiStateStore
    operator_events: OperatorEvents
    cache: ReadCache


@dataclass(frozen=True)
class Policy:
    """How notifications become deliveries (from the settings)."""

    api_url: str
    grouping_window: timedelta
    max_changes_per_delivery: int = 50
    reminder_interval: timedelta = timedelta(days=7)
    claim_recovery: timedelta = timedelta(seconds=30)


# ---------------------------------------------------------------------------------------------
# Documents


def change_document(change: Change) -> Document:
    """A status change as stored (the explanation as JSON text: its keys are free-form)."""
    if isinstance(change, MeasureDivergenceChanged):
        return change.model_dump(mode="json")
    data = change.model_dump(mode="json", exclude={"explanation"})
    data["explanation_json"] = json.dumps(change.explanation, ensure_ascii=False)
    return data


def notified_change_from_document(doc: Document) -> Change:
    """A notification's change: a divergence (it has a `divergence`) or a status change."""
    if "divergence" in doc:
        return MeasureDivergenceChanged.model_validate(doc)
    return change_from_document(doc)


def change_from_document(doc: Document) -> KpiStatusChanged:
    data = {k: v for k, v in doc.items() if k != "explanation_json"}
    data["explanation"] = json.loads(doc.get("explanation_json") or "{}")
    return KpiStatusChanged.model_validate(data)


def silence_from_document(doc: Document) -> Silence:
    return Silence.model_validate(
        {
            "id": doc["_id"],
            "scope": doc.get("scope") or {},
            "starts_at": doc.get("starts_at"),
            "ends_at": doc.get("ends_at"),
            "quiet_hours": doc.get("quiet_hours"),
        }
    )


def target_of(doc: Document) -> Target:
    return Target(
        subscription_id=doc["subscription_id"],
        kpi_id=doc["kpi_id"],
        measure_id=doc["measure_id"],
        ministries=list(doc.get("ministries") or []),
    )


def notified_change(doc: Document) -> NotifiedChange:
    return NotifiedChange(
        notification_id=doc["_id"],
        kind=NotificationKind(doc["kind"]),
        reminder=int(doc.get("reminder", 0)),
        change=notified_change_from_document(doc["change"]),
        changed_at=doc["changed_at"],
        status_event_id=doc["status_event_id"],
    )


def new_notification(
    *,
    key: str,
    subscription_id: str,
    kind: NotificationKind,
    change: Change,
    changed_at: datetime,
    status_event_id: str,
    now: datetime,
    reminder: int,
) -> Document:
    # `kpi_id`: the subject (a measure, for a divergence), as silences and the log match it.
    return {
        "_id": key,
        "subscription_id": subscription_id,
        "kpi_id": subject_of(change),
        "measure_id": change.measure_id,
        "ministries": list(change.ministries),
        "episode_id": change.episode_id,
        "kind": kind.value,
        "reminder": reminder,
        "change": change_document(change),
        "changed_at": changed_at,
        "status_event_id": status_event_id,
        "state": "waiting",
        "arrived_at": now,
        "immediate": False,
        "created_at": now,
        "updated_at": now,
    }


def active_secrets(subscription: Document, now: datetime) -> list[str]:
    """The secrets that sign now: the current one and, during an overlap, the previous ones."""
    return [
        s["secret"]
        for s in subscription["secrets"]
        if s.get("expires_at") is None or s["expires_at"] > now
    ]


# ---------------------------------------------------------------------------------------------
# Grouping, silences, reminders


@dataclass
class Batcher:
    stores: Stores
    policy: Policy
    metrics: AlertsMetrics
    clock: Clock
    on_delivery: Callable[[], None] = field(default=_nothing)

    async def _silences(self, now: datetime) -> list[Silence]:
        return [silence_from_document(doc) for doc in await self.stores.cache.silences(now)]

    async def flush(self, subscription_ids: Iterable[str] | None = None) -> int:
        """Turn every group whose window has closed into a delivery; returns how many."""
        now = self.clock()
        waiting = await self.stores.notifications.waiting(subscription_ids)
        if not waiting:
            return 0
        by_id = {doc["_id"]: doc for doc in waiting}
        groups = ready_groups(
            (
                Waiting(doc["_id"], doc["subscription_id"], doc["arrived_at"], doc["immediate"])
                for doc in waiting
            ),
            now=now,
            window=self.policy.grouping_window,
            max_size=self.policy.max_changes_per_delivery,
        )
        if not groups:
            return 0
        silences = await self._silences(now)
        created = 0
        for group in groups:
            to_send = []
            for notification_id in group.ids:
                doc = by_id[notification_id]
                target = target_of(doc)
                until = muted_until(silences, target, now)
                if until is None:
                    to_send.append(doc)
                    continue
                by = [s.id for s in muting(silences, target, now)]
                if await self.stores.notifications.mute(
                    notification_id, until=until, by=by, now=now
                ):
                    self.metrics.notifications.labels(kind=doc["kind"], outcome="muted").inc()
                    log.info(
                        "notification_muted",
                        notification_id=notification_id,
                        until=until.isoformat(),
                        silences=by,
                    )
            if to_send:
                created += await self._deliver(group.subscription_id, to_send, now)
        if created:
            self.on_delivery()
        return created

    async def _deliver(self, subscription_id: str, docs: Sequence[Document], now: datetime) -> int:
        delivery_id = new_message_id()
        claimed = await self.stores.notifications.claim(docs, delivery_id, now)
        lost = {doc["_id"] for doc in docs} - {doc["_id"] for doc in claimed}
        if lost:
            # Taken by a concurrent instance, or left half-claimed by one that stopped.
            await self.stores.notifications.adopt_orphans(
                sorted(lost), now - self.policy.claim_recovery
            )
        if not claimed:
            return 0
        await self._create_delivery(delivery_id, subscription_id, claimed, now)
        return 1

    def delivery_document(
        self,
        delivery_id: str,
        subscription_id: str,
        notifications: Sequence[Document],
        now: datetime,
    ) -> Document:
        """One webhook message carrying these notifications (one or a group)."""
        changes = [notified_change(doc) for doc in notifications]
        payload = webhook_payload(
            changes, api_url=self.policy.api_url, subscription_id=subscription_id
        )
        return {
            "_id": delivery_id,
            "subscription_id": subscription_id,
            "type": payload["type"],
            "body": encode(payload).decode(),
            "notification_ids": [c.notification_id for c in changes],
            "kinds": [c.kind.value for c in changes],
            "kpi_ids": sorted({subject_of(c.change) for c in changes}),
            "changed_at": [c.changed_at for c in changes],
            "state": "pending",
            "attempts": 0,
            "retry_index": 0,
            "next_attempt_at": now,
            "lease_until": now,
            "lease_token": None,
            "created_at": now,
        }

    async def _create_delivery(
        self, delivery_id: str, subscription_id: str, claimed: Sequence[Document], now: datetime
    ) -> None:
        document = self.delivery_document(delivery_id, subscription_id, claimed, now)
        created = await self.stores.deliveries.create(document)
        await self.stores.notifications.mark_batched(document["notification_ids"])
        if created:
            log.info(
                "delivery_created",
                message_id=delivery_id,
                subscription_id=subscription_id,
                changes=len(claimed),
                type=document["type"],
                kpi_ids=document["kpi_ids"],
                status_event_ids=[doc["status_event_id"] for doc in claimed],
            )

    async def route_immediately(self, documents: Sequence[Document]) -> None:
        """No grouping window: decide each new notification now, before it is recorded.
        Muted ones are recorded as such (and go to the live set); the others are recorded as
        already in their own delivery, whose webhook-id derives from the notification key."""
        if not documents:
            return
        now = self.clock()
        silences = await self._silences(now)
        for doc in documents:
            target = target_of(doc)
            until = muted_until(silences, target, now)
            if until is None:
                doc.update(state="batched", delivery_id=message_id_for(doc["_id"]))
            else:
                by = [s.id for s in muting(silences, target, now)]
                doc.update(state="muted", muted_until=until, muted_by=by, muted_at=now)

    async def deliver_immediately(
        self, documents: Sequence[Document], inserted: Sequence[Document]
    ) -> int:
        """Create the deliveries of notifications routed by `route_immediately` (and, for a
        redelivered change, any its first handling did not finish)."""
        now = self.clock()
        new_ids = {doc["_id"] for doc in inserted}
        fresh = [
            self.delivery_document(doc["delivery_id"], doc["subscription_id"], [doc], now)
            for doc in inserted
            if doc["state"] == "batched"
        ]
        created = len(await self.stores.deliveries.create_many(fresh))
        # A repeated change: what the first handling recorded decides (not today's routing).
        recorded = [
            doc
            for doc in await asyncio.gather(
                *(
                    self.stores.notifications.get(d["_id"])
                    for d in documents
                    if d["_id"] not in new_ids
                )
            )
            if doc is not None
            and doc["state"] == "batched"
            and doc.get("delivery_id") == message_id_for(doc["_id"])
        ]
        if recorded:
            created += await self.stores.deliveries.ensure_created(
                [
                    self.delivery_document(d["delivery_id"], d["subscription_id"], [d], now)
                    for d in recorded
                ]
            )
        for doc in documents:
            if doc["_id"] in new_ids and doc["state"] == "muted":
                self.metrics.notifications.labels(kind=doc["kind"], outcome="muted").inc()
        if created:
            self.on_delivery()
        return created

    async def recover_claims(self) -> int:
        """Finish deliveries whose creating instance stopped between claim and creation."""
        now = self.clock()
        stale = await self.stores.notifications.stale_claims(now - self.policy.claim_recovery)
        delivery_ids = {doc["delivery_id"] for doc in stale}
        for delivery_id in delivery_ids:
            claimed = await self.stores.notifications.in_delivery(delivery_id)
            if not claimed:
                continue
            existing = await self.stores.deliveries.get(delivery_id)
            if existing is None:
                await self._create_delivery(
                    delivery_id, claimed[0]["subscription_id"], claimed, now
                )
            else:
                # Archived: queued too unless its creator stopped between the two inserts.
                await self.stores.deliveries.ensure_created([existing])
                await self.stores.notifications.mark_batched([doc["_id"] for doc in claimed])
        if delivery_ids:
            self.on_delivery()
        return len(delivery_ids)

    async def release_muted(self) -> int:
        """Mutes that ended: release what is still relevant, drop the rest; returns released."""
        now = self.clock()
        due = await self.stores.notifications.muted_due(now)
        if not due:
            return 0
        silences = await self._silences(now)
        states = await self.stores.kpi_states.get_many(doc["kpi_id"] for doc in due)
        released = 0
        for doc in due:
            target = target_of(doc)
            until = muted_until(silences, target, now)
            if until is not None:
                by = [s.id for s in muting(silences, target, now)]
                await self.stores.notifications.mute(doc["_id"], until=until, by=by, now=now)
                continue
            state = states.get(doc["kpi_id"])
            current = change_from_document(state["change"]) if state else None
            kind = NotificationKind(doc["kind"])
            if still_relevant(kind, doc.get("episode_id"), current):
                if await self.stores.notifications.release(doc["_id"], now):
                    released += 1
                    self.metrics.notifications.labels(kind=kind.value, outcome="released").inc()
            elif await self.stores.notifications.drop(doc["_id"], "no longer relevant", now):
                self.metrics.notifications.labels(kind=kind.value, outcome="dropped").inc()
                log.info("muted_notification_dropped", notification_id=doc["_id"])
        return released

    async def send_reminders(self) -> int:
        """Reminders for episodes still open after the reminder interval; returns how many."""
        interval = self.policy.reminder_interval
        if interval <= timedelta(0):
            return 0
        now = self.clock()
        subscriptions: dict[str, Document | None] = {}
        reminders: list[Document] = []
        for state in await self.stores.kpi_states.with_reminders():
            kpi_id = state["_id"]
            current = change_from_document(state["change"])
            kind = reminder_kind(current.status)
            for subscription_id, entry in (state.get("subs") or {}).items():
                if entry["due_at"] > now:
                    continue
                if kind is None or current.episode_id != entry["episode_id"]:
                    await self.stores.kpi_states.stop_reminder(kpi_id, subscription_id)
                    continue
                if subscription_id not in subscriptions:
                    subscriptions[subscription_id] = await self.stores.subscriptions.get(
                        subscription_id
                    )
                subscription = subscriptions[subscription_id]
                if subscription is None:
                    await self.stores.kpi_states.stop_reminder(kpi_id, subscription_id)
                    continue
                number = int(entry.get("reminders", 0)) + 1
                wanted = subscription["state"] == "active" and matches(
                    SubscriptionFilter.model_validate(subscription["filter"]), current, kind
                )
                if wanted:
                    reminder = new_notification(
                        key=reminder_key(entry["notification_id"], number),
                        subscription_id=subscription_id,
                        kind=kind,
                        change=current,
                        changed_at=state["changed_at"],
                        status_event_id=state["status_event_id"],
                        now=now,
                        reminder=number,
                    )
                    reminders.extend(await self.stores.notifications.insert_new([reminder]))
                await self.stores.kpi_states.advance_reminder(
                    kpi_id,
                    subscription_id,
                    number=number,
                    due_at=following_reminder_at(entry["due_at"], now, interval),
                )
        for reminder in reminders:
            self.metrics.notifications.labels(kind=reminder["kind"], outcome="reminder").inc()
        return len(reminders)

    async def tick(self) -> bool:
        """One round of the batcher loop; never 'busy' (the loop polls at a short interval)."""
        await self.recover_claims()
        await self.release_muted()
        await self.flush()
        return False

    async def remind(self) -> bool:
        """One round of the reminder loop (its own, slower interval)."""
        await self.send_reminders()
        return False


# ---------------------------------------------------------------------------------------------
# Status changes


@dataclass
class StatusChangeHandler:
    stores: Stores
    policy: Policy
    batcher: Batcher
    metrics: AlertsMetrics
    clock: Clock

    async def __call__(self, events: Sequence[CloudEvent]) -> Sequence[Rejection]:
        now = self.clock()
        changes: list[tuple[CloudEvent, KpiStatusChanged]] = []
        divergences: list[tuple[CloudEvent, MeasureDivergenceChanged]] = []
        for event in events:
            if isinstance(event.data, MeasureDivergenceChanged):
                divergences.append((event, event.data))
                continue
            assert isinstance(event.data, KpiStatusChanged)
            changes.append((event, event.data))
        active = await self.stores.cache.active_subscriptions()
        filters = [(doc["_id"], SubscriptionFilter.model_validate(doc["filter"])) for doc in active]
        documents: list[Document] = []
        for event, change in changes:
            for subscription_id, kind in select(filters, change):
                documents.append(
                    new_notification(
                        key=notification_key(subscription_id, change, kind),
                        subscription_id=subscription_id,
                        kind=kind,
                        change=change,
                        changed_at=event.time,
                        status_event_id=event.id,
                        now=now,
                        reminder=0,
                    )
                )
        for event, divergence in divergences:
            for subscription_id, kind in select_divergence(filters, divergence):
                documents.append(
                    new_notification(
                        key=divergence_key(subscription_id, divergence),
                        subscription_id=subscription_id,
                        kind=kind,
                        change=divergence,
                        changed_at=event.time,
                        status_event_id=event.id,
                        now=now,
                        reminder=0,
                    )
                )
        immediate = self.policy.grouping_window <= timedelta(0)
        if immediate:
            await self.batcher.route_immediately(documents)
        inserted = await self.stores.notifications.insert_new(documents)
        new_ids = {doc["_id"] for doc in inserted}
        for doc in documents:
            outcome = "recorded" if doc["_id"] in new_ids else "duplicate"
            self.metrics.notifications.labels(kind=doc["kind"], outcome=outcome).inc()
        notified = Counter(doc["status_event_id"] for doc in inserted)
        for event, change in changes:
            # caused_by: the ministry events behind the change, so a search for one of them
            # finds this line too (shared/logs.py).
            log.info(
                "status_change_received",
                event_id=event.id,
                kpi_id=change.kpi_id,
                previous_status=change.previous_status,
                status=change.status,
                caused_by=caused_by(change.explanation),
                notifications=notified[event.id],
            )
        for event, divergence in divergences:
            log.info(
                "divergence_received",
                event_id=event.id,
                measure_id=divergence.measure_id,
                divergence=divergence.divergence,
                episode_id=divergence.episode_id,
                notifications=notified[event.id],
            )
        # The KPI's latest change (with the reminders it starts) and, with no grouping window,
        # the deliveries, made now rather than on the batcher's next round: together.
        await asyncio.gather(
            self.stores.kpi_states.record(self._states(changes, inserted, now)),
            *([self.batcher.deliver_immediately(documents, inserted)] if immediate else []),
        )
        return ()

    def _states(
        self,
        changes: Sequence[tuple[CloudEvent, KpiStatusChanged]],
        inserted: Sequence[Document],
        now: datetime,
    ) -> list[Document]:
        states: dict[str, Document] = {}
        for event, change in changes:
            kept = states.get(change.kpi_id)
            if kept is not None and kept["changed_at"] > event.time:
                continue
            states[change.kpi_id] = {
                "_id": change.kpi_id,
                "change": change_document(change),
                "changed_at": event.time,
                "status_event_id": event.id,
                "recorded_at": now,
                "close_reminders": closes_episode(change),
                "reminders": {},
            }
        for doc in inserted:
            state = states.get(doc["kpi_id"])
            if state is None:  # a divergence: no KPI state to follow, no reminders
                continue
            due_at = first_reminder_at(
                NotificationKind(doc["kind"]), now, self.policy.reminder_interval
            )
            if due_at is None or doc["episode_id"] != state["change"]["episode_id"]:
                continue
            state["reminders"][doc["subscription_id"]] = {
                "notification_id": doc["_id"],
                "kind": doc["kind"],
                "episode_id": doc["episode_id"],
                "due_at": due_at,
                "reminders": 0,
            }
        return list(states.values())


# ---------------------------------------------------------------------------------------------
# Delivery


@dataclass
class DeliveryWorker:
    stores: Stores
    sender: WebhookSender
    metrics: AlertsMetrics
    clock: Clock
    schedule_s: Sequence[float]
    lease: timedelta
    disable_after: timedelta
    jitter: float = 0.1
    max_concurrent: int = 32
    max_per_subscription: int = 4
    # Kept free at the end of a lease for the bookkeeping around the send: the send is cut so
    # that it ends at least half of this before the lease does.
    lease_margin: timedelta = timedelta(seconds=15)
    _in_flight: dict[asyncio.Task[None], Document] = field(default_factory=dict, init=False)
    _per_subscription: dict[str, int] = field(default_factory=dict, init=False)

    def __post_init__(self) -> None:
        shortest = timedelta(seconds=self.sender.deadline_s) + self.lease_margin
        if self.lease < shortest:
            # Two attempts of one delivery must never overlap: a lease that could end while its
            # attempt is still open would let another worker start the next one.
            raise ValueError(
                f"the lease ({self.lease.total_seconds():g} s) must be at least the attempt "
                f"deadline plus the margin ({shortest.total_seconds():g} s)"
            )

    # The loop ----------------------------------------------------------------------------

    async def run(self, wake: asyncio.Event, *, poll_s: float) -> None:
        """Lease and send due deliveries until cancelled; woken early by `wake`."""
        try:
            while True:
                wake.clear()
                try:
                    await self.fill(wake)
                except asyncio.CancelledError:
                    raise
                except Exception as error:  # MongoDB away: keep the loop, try again soon
                    log.warning("delivery_lease_failed", error=repr(error))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(wake.wait(), timeout=poll_s)
        finally:
            await self._stop_in_flight()

    async def fill(self, wake: asyncio.Event | None = None) -> int:
        """Start attempts for due deliveries up to the concurrency limits; returns how many."""
        started = 0
        while (room := self.max_concurrent - len(self._in_flight)) > 0:
            busy = [s for s, n in self._per_subscription.items() if n >= self.max_per_subscription]
            leased = await self.stores.deliveries.lease_batch(
                self.clock(),
                self.lease,
                limit=min(room, self.max_per_subscription),
                exclude_subscriptions=busy,
                # Never a second attempt of a delivery this worker is still sending.
                exclude_ids=[d["_id"] for d in self._in_flight.values()],
            )
            if not leased:
                break
            for delivery in leased:
                subscription_id = delivery["subscription_id"]
                if self._per_subscription.get(subscription_id, 0) >= self.max_per_subscription:
                    await self.stores.deliveries.release_lease(delivery, self.clock())
                    continue
                self._per_subscription[subscription_id] = (
                    self._per_subscription.get(subscription_id, 0) + 1
                )
                task = asyncio.create_task(
                    self.attempt(delivery), name=f"deliver {delivery['_id']}"
                )
                self._in_flight[task] = delivery
                task.add_done_callback(lambda t: self._finished(t, wake))
                started += 1
            if all(
                self._per_subscription.get(d["subscription_id"], 0) >= self.max_per_subscription
                for d in leased
            ):
                break
        return started

    def _finished(self, task: asyncio.Task[None], wake: asyncio.Event | None) -> None:
        delivery = self._in_flight.pop(task)
        subscription_id = delivery["subscription_id"]
        remaining = self._per_subscription.get(subscription_id, 1) - 1
        if remaining > 0:
            self._per_subscription[subscription_id] = remaining
        else:
            self._per_subscription.pop(subscription_id, None)
        if not task.cancelled() and task.exception() is not None:
            log.warning(
                "delivery_attempt_crashed",
                message_id=delivery["_id"],
                error=repr(task.exception()),
            )
        if wake is not None:
            wake.set()

    async def _stop_in_flight(self) -> None:
        tasks = dict(self._in_flight)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        # Give the leases back so a restarted instance retries at once, not after the lease.
        with contextlib.suppress(Exception):
            async with asyncio.timeout(2.0):
                for delivery in tasks.values():
                    await self.stores.deliveries.release_lease(delivery, self.clock())

    async def drain(self) -> int:
        """Send everything due now and wait for the attempts (tests and tools); returns count."""
        total = 0
        while True:
            started = await self.fill()
            if not started and not self._in_flight:
                return total
            total += started
            if self._in_flight:
                await asyncio.wait(list(self._in_flight))

    # One attempt ---------------------------------------------------------------------------

    async def attempt(self, delivery: Document) -> None:
        """One attempt at one leased delivery: fence, sign, send, log, schedule."""
        now = self.clock()
        # The fence's lease runs from `now`; the send must be over well before it ends.
        send_by = time.monotonic() + (self.lease - self.lease_margin / 2).total_seconds()
        subscription = await self.stores.cache.subscription(delivery["subscription_id"])
        if subscription is None:
            await self.stores.deliveries.update_delivery(
                delivery, {"state": "cancelled", "lease_until": now}
            )
            return
        if subscription["state"] != "active":
            reason = f"subscription {subscription['state']}"
            await self.stores.deliveries.hold(delivery, reason, now)
            return
        started, message = await asyncio.gather(
            self.stores.deliveries.start_attempt(delivery, now, self.lease),
            self.stores.deliveries.get(delivery["_id"]),
        )
        if started is None:
            return  # another worker makes (or made) this attempt
        entry, delivery = started
        if message is None:  # not archived (cannot happen: archived before queued)
            await self.stores.deliveries.interrupt(entry, now, "the message is not archived")
            return
        delivery = {**message, **delivery}
        try:
            await self._send(delivery, subscription, entry, now, send_by)
        except asyncio.CancelledError:
            # Only the worker's own shutdown cancels an attempt (the deadline ends the send
            # with a timeout result): say so, and let the next instance retry at once.
            reason = "the worker stopped mid-attempt (service shutdown)"
            log.warning(
                "webhook_attempt_interrupted",
                message_id=delivery["_id"],
                attempt=entry["attempt"],
                reason=reason,
            )
            with contextlib.suppress(Exception):
                async with asyncio.timeout(2.0):
                    await self.stores.deliveries.interrupt(entry, self.clock(), reason)
                    await self.stores.deliveries.release_lease(delivery, self.clock())
            raise

    async def _send(
        self,
        delivery: Document,
        subscription: Document,
        entry: Document,
        now: datetime,
        send_by: float,
    ) -> None:
        message_id = delivery["_id"]
        attempt_no = int(entry["attempt"])
        body = delivery["body"].encode()
        headers = webhook_headers(
            active_secrets(subscription, now), message_id, int(now.timestamp()), body
        )
        result = await self.sender.send(
            subscription["url"], body, headers, deadline_s=send_by - time.monotonic()
        )
        done = self.clock()
        retry_index = int(delivery.get("retry_index", 0)) + 1
        self.metrics.attempts.labels(result=result.result).inc()
        self.metrics.attempt_seconds.observe(result.latency_s)
        logged = self.stores.deliveries.finish_attempt(
            entry,
            {
                "status_code": result.status_code,
                "latency_ms": round(result.latency_s * 1000, 1),
                "result": result.result,
                "error": result.error,
                "response_bytes": result.response_bytes,
                "response_truncated": result.response_truncated,
            },
        )
        verdict = after_attempt(
            failing_since=subscription.get("failing_since"),
            succeeded=result.succeeded,
            status_code=result.status_code,
            at=done,
            disable_after=self.disable_after,
        )
        update: Document = {
            "attempts": attempt_no,
            "retry_index": retry_index,
            "last_status_code": result.status_code,
            "last_error": result.error,
            "last_attempt_at": done,
            "lease_until": done,
        }
        if result.succeeded:
            update.update(state="delivered", delivered_at=done)
            if subscription.get("failing_since") is not None:
                await self.stores.subscriptions.mark_healthy(subscription["_id"])
                self.stores.cache.invalidate()
        else:
            if subscription.get("failing_since") is None and verdict.failing_since is not None:
                await self.stores.subscriptions.mark_failing(
                    subscription["_id"], verdict.failing_since
                )
                self.stores.cache.invalidate()
            if verdict.disable:
                await self._disable(subscription, verdict, result, done)
                update.update(state="held", held_reason="endpoint disabled")
            else:
                retry_at = next_attempt_at(
                    attempt=retry_index,
                    now=done,
                    schedule_s=self.schedule_s,
                    retry_after_s=result.retry_after_s,
                    jitter=self.jitter,
                )
                if retry_at is None:
                    update.update(state="failed", failed_at=done)
                else:
                    update.update(next_attempt_at=retry_at, lease_until=done)
        _, applied = await asyncio.gather(
            logged, self.stores.deliveries.update_delivery(delivery, update, attempt=attempt_no)
        )
        if not applied:
            log.warning("delivery_outcome_superseded", message_id=message_id, attempt=attempt_no)
        self._count_outcome(delivery, update, done)
        log.info(
            "webhook_attempt",
            message_id=message_id,
            kpi_ids=delivery.get("kpi_ids", []),
            subscription_id=subscription["_id"],
            status_code=result.status_code,
            result=result.result,
            attempt=attempt_no,
            state=update.get("state", "pending"),
            latency_ms=round(result.latency_s * 1000, 1),
            error=result.error,
            response_truncated=result.response_truncated,
            next_attempt_at=(
                update["next_attempt_at"].isoformat() if "next_attempt_at" in update else None
            ),
        )

    def _count_outcome(self, delivery: Document, update: Document, done: datetime) -> None:
        state = update.get("state")
        if state not in ("delivered", "failed"):
            return
        outcome = state
        for kind in delivery.get("kinds", []):
            self.metrics.notifications.labels(kind=kind, outcome=outcome).inc()
        if state == "delivered" and not delivery.get("manual"):
            for changed_at in delivery.get("changed_at", []):
                self.metrics.delivery_seconds.observe(max((done - changed_at).total_seconds(), 0))

    async def _disable(
        self, subscription: Document, verdict: EndpointVerdict, result: SendResult, at: datetime
    ) -> None:
        reason = verdict.reason or "failing"
        await self.stores.subscriptions.set_state(
            subscription["_id"],
            "disabled",
            reason=reason,
            now=at,
            only_from=["active"],
            extra={"disabled_at": at},
        )
        self.stores.cache.invalidate()
        since = verdict.failing_since or at
        # One event per failing period, even if several attempts (or instances) get here.
        recorded = await self.stores.operator_events.record(
            {
                "_id": f"endpoint_disabled:{subscription['_id']}:{since.isoformat()}",
                "at": at,
                "kind": "endpoint_disabled",
                "subscription_id": subscription["_id"],
                "url": subscription["url"],
                "reason": reason,
                "last_status_code": result.status_code,
                "last_error": result.error,
            }
        )
        if not recorded:
            return
        gone = result.status_code == 410
        self.metrics.endpoints_disabled.labels(reason="gone" if gone else "failing").inc()
        log.error(
            "endpoint_disabled",
            subscription_id=subscription["_id"],
            target=url_origin(subscription["url"]),
            reason=reason,
        )


# ---------------------------------------------------------------------------------------------
# Gauges


@dataclass
class GaugeRefresher:
    stores: Stores
    metrics: AlertsMetrics

    QUEUE_STATES = ("pending", "held")
    WAITING_STATES = ("waiting", "muted", "claimed")
    SUBSCRIPTION_STATES = ("active", "paused", "disabled")

    async def refresh(self) -> bool:
        deliveries = await self.stores.deliveries.count_by_state()
        for state in self.QUEUE_STATES:
            self.metrics.deliveries.labels(state=state).set(deliveries.get(state, 0))
        self.metrics.deliveries_retrying.set(await self.stores.deliveries.count_retrying())
        notifications = await self.stores.notifications.count_by_state()
        for state in self.WAITING_STATES:
            self.metrics.notifications_by_state.labels(state=state).set(notifications.get(state, 0))
        subscriptions = await self.stores.subscriptions.count_by_state()
        for state in self.SUBSCRIPTION_STATES:
            self.metrics.subscriptions.labels(state=state).set(subscriptions.get(state, 0))
        self.metrics.disabled_endpoints.set(subscriptions.get("disabled", 0))
        return False

"""Grouping windows → deliveries, silences, reminders, and recovery of half-made deliveries.

`Batcher` closes grouping windows: each subscription's notifications of one window become one
delivery (one webhook-id); notifications a silence mutes are held back (recorded, state
``muted``) and released when no silence holds them any more, if still relevant. It also sends
reminders for episodes that stay open and finishes deliveries whose creating instance died
half-way. With no grouping window, it routes each new notification at once
(`route_immediately`, `deliver_immediately`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import structlog

from services.alerts.domain.grouping import Waiting, ready_groups
from services.alerts.domain.message_ids import message_id_for, new_message_id
from services.alerts.domain.notifications import (
    NotificationKind,
    matches,
    reminder_key,
    still_relevant,
)
from services.alerts.domain.payloads import encode, subject_of, webhook_payload
from services.alerts.domain.reminders import following_reminder_at, reminder_kind
from services.alerts.domain.silences import Silence, muted_until, muting
from services.alerts.metrics import AlertsMetrics
from services.alerts.ports import Document, NewDelivery, Stores, Subscription
from services.alerts.service.documents import (
    change_from_document,
    new_notification,
    notified_change,
    target_of,
)
from services.alerts.service.policy import Policy, no_wakeup
from shared.clock import Clock

log = structlog.stdlib.get_logger("alerts")


@dataclass
class Batcher:
    stores: Stores
    policy: Policy
    metrics: AlertsMetrics
    clock: Clock
    on_delivery: Callable[[], None] = field(default=no_wakeup)

    async def _silences(self, now: datetime) -> list[Silence]:
        return await self.stores.cache.silences(now)

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

    def delivery_record(
        self,
        delivery_id: str,
        subscription_id: str,
        notifications: Sequence[Document],
        now: datetime,
    ) -> NewDelivery:
        """One webhook message carrying these notifications (one or a group)."""
        changes = [notified_change(doc) for doc in notifications]
        payload = webhook_payload(
            changes, api_url=self.policy.api_url, subscription_id=subscription_id
        )
        return NewDelivery(
            message_id=delivery_id,
            subscription_id=subscription_id,
            type=str(payload["type"]),
            body=encode(payload).decode(),
            notification_ids=tuple(c.notification_id for c in changes),
            kinds=tuple(c.kind.value for c in changes),
            kpi_ids=tuple(sorted({subject_of(c.change) for c in changes})),
            changed_at=tuple(c.changed_at for c in changes),
            created_at=now,
        )

    async def _create_delivery(
        self, delivery_id: str, subscription_id: str, claimed: Sequence[Document], now: datetime
    ) -> None:
        delivery = self.delivery_record(delivery_id, subscription_id, claimed, now)
        created = await self.stores.deliveries.create(delivery)
        await self.stores.notifications.mark_batched(delivery.notification_ids)
        if created:
            log.info(
                "delivery_created",
                message_id=delivery_id,
                subscription_id=subscription_id,
                changes=len(claimed),
                type=delivery.type,
                kpi_ids=list(delivery.kpi_ids),
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
            self.delivery_record(doc["delivery_id"], doc["subscription_id"], [doc], now)
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
                    self.delivery_record(d["delivery_id"], d["subscription_id"], [d], now)
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
                await self.stores.deliveries.ensure_created(
                    [self.delivery_record(delivery_id, existing["subscription_id"], claimed, now)]
                )
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
        subscriptions: dict[str, Subscription | None] = {}
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
                wanted = subscription.state == "active" and matches(
                    subscription.filter, current, kind
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

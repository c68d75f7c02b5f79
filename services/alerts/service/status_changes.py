"""Routing of status changes: each change → one notification per matching subscription.

`StatusChangeHandler` (the status topic's consumer, via the shared runner) records each KPI's
latest change, and one notification per matching subscription, KPI episode and kind; a
redelivered or repeated change finds its key taken and is counted as a duplicate.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog

from services.alerts.domain.notifications import (
    NotificationKind,
    closes_episode,
    divergence_key,
    notification_key,
    select,
    select_divergence,
)
from services.alerts.domain.reminders import first_reminder_at
from services.alerts.metrics import AlertsMetrics
from services.alerts.ports import Document, Stores
from services.alerts.service.batching import Batcher
from services.alerts.service.documents import change_document, new_notification
from services.alerts.service.policy import Policy
from shared.clock import Clock
from shared.events.cloudevents import CloudEvent
from shared.events.contracts import KpiStatusChanged, MeasureDivergenceChanged
from shared.logs import caused_by

log = structlog.stdlib.get_logger("alerts")


@dataclass
class StatusChangeHandler:
    stores: Stores
    policy: Policy
    batcher: Batcher
    metrics: AlertsMetrics
    clock: Clock

    async def __call__(self, events: Sequence[CloudEvent]) -> tuple[()]:
        """Record the notifications of a batch of changes; never rejects one."""
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
        filters = [(subscription.id, subscription.filter) for subscription in active]
        documents: list[Document] = []
        for event, change in changes:
            for subscription_id, kind in select(filters, change):
                documents.append(
                    new_notification(
                        key=notification_key(subscription_id, change, kind),
                        subscription_id=subscription_id,
                        kind=kind,
                        change=change,
                        changed_at=event.time or now,
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
                        changed_at=event.time or now,
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

"""Alerts use cases: status change → queued notifications; due delivery → signed webhook."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import structlog
from prometheus_client import CollectorRegistry, Counter, Histogram

from services.alerts.adapters.store import DeliveryQueue, SubscriptionStore, message_id_for
from services.alerts.adapters.webhook_sender import WebhookSender
from services.alerts.domain.notifications import (
    WEBHOOK_TYPES,
    NotificationKind,
    SubscriptionFilter,
    notification_key,
    select,
)
from services.alerts.domain.retry import next_attempt_at
from services.alerts.domain.signing import webhook_headers
from shared.consumer import Rejection
from shared.events.cloudevents import CloudEvent
from shared.events.contracts import KpiStatusChanged
from shared.metrics import metric_name

log = structlog.stdlib.get_logger("alerts")


@dataclass(frozen=True)
class AlertsMetrics:
    notifications: Counter
    attempts: Counter
    delivery_seconds: Histogram

    @classmethod
    def create(cls, registry: CollectorRegistry) -> AlertsMetrics:
        return cls(
            notifications=Counter(
                metric_name("alerts", "notifications"),
                "Notifications decided from status changes, by kind and outcome.",
                ["kind", "outcome"],
                registry=registry,
            ),
            attempts=Counter(
                metric_name("alerts", "delivery_attempts"),
                "Webhook delivery attempts by result (success, http_error, network_error).",
                ["result"],
                registry=registry,
            ),
            delivery_seconds=Histogram(
                metric_name("alerts", "delivery_latency_seconds"),
                "Time from the status change to the receiver's 2xx.",
                buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 3600),
                registry=registry,
            ),
        )


@dataclass
class StatusChangeHandler:
    subscriptions: SubscriptionStore
    queue: DeliveryQueue
    metrics: AlertsMetrics
    api_url: str
    clock: Callable[[], datetime]
    on_enqueued: Callable[[], None] = field(default=lambda: None)

    async def __call__(self, events: Sequence[CloudEvent]) -> Sequence[Rejection]:
        active = await self.subscriptions.active()
        filters = [(doc["_id"], SubscriptionFilter.model_validate(doc["filter"])) for doc in active]
        now = self.clock()
        documents: list[dict[str, Any]] = []
        for event in events:
            change = event.data
            assert isinstance(change, KpiStatusChanged)
            for subscription_id, kind in select(filters, change):
                key = notification_key(subscription_id, change, kind)
                documents.append(self._delivery(key, subscription_id, kind, event, change, now))
        queued = await self.queue.enqueue(documents)
        for doc in documents:
            self.metrics.notifications.labels(kind=doc["kind"], outcome="queued").inc()
        if queued:
            self.on_enqueued()
        return ()

    def _delivery(
        self,
        key: str,
        subscription_id: str,
        kind: NotificationKind,
        event: CloudEvent,
        change: KpiStatusChanged,
        now: datetime,
    ) -> dict[str, Any]:
        payload = {
            "type": WEBHOOK_TYPES[kind],
            "timestamp": now.isoformat(),
            "data": {
                "kpi_id": change.kpi_id,
                "kind": change.kind,
                "measure_id": change.measure_id,
                "ministries": change.ministries,
                "previous_status": change.previous_status,
                "status": change.status,
                "episode_id": change.episode_id,
                "evaluated_on": change.evaluated_on.isoformat(),
                "explanation": change.explanation,
                "status_event_id": event.id,
                "link": f"{self.api_url}/v1/kpis/{change.kpi_id}",
            },
        }
        return {
            "_id": key,
            "message_id": message_id_for(key),
            "subscription_id": subscription_id,
            "kind": kind.value,
            "kpi_id": change.kpi_id,
            "payload": payload,
            "state": "pending",
            "attempts": 0,
            "changed_at": event.time,
            "created_at": now,
            "next_attempt_at": now,
            "lease_until": now,
        }


@dataclass
class DeliveryWorker:
    subscriptions: SubscriptionStore
    queue: DeliveryQueue
    sender: WebhookSender
    metrics: AlertsMetrics
    clock: Callable[[], datetime]
    owner: str
    schedule_s: Sequence[float]
    lease: timedelta

    async def deliver_one(self) -> bool:
        """Lease and attempt one due delivery; False when none is due."""
        now = self.clock()
        delivery = await self.queue.lease_due(now, self.lease, self.owner)
        if delivery is None:
            return False
        subscription = await self.subscriptions.get(delivery["subscription_id"])
        if subscription is None or subscription["state"] != "active":
            await self.queue.record_attempt(
                delivery,
                {
                    "delivery_id": delivery["_id"],
                    "subscription_id": delivery["subscription_id"],
                    "at": now,
                    "status_code": None,
                    "latency_ms": 0,
                    "error": "subscription not active",
                },
                {"state": "cancelled" if subscription is None else "held"},
            )
            return True
        body = json.dumps(delivery["payload"], ensure_ascii=False, separators=(",", ":")).encode()
        timestamp = int(time.time())
        signing = [
            s["secret"]
            for s in subscription["secrets"]
            if s.get("expires_at") is None or s["expires_at"] > now
        ]
        headers = webhook_headers(signing, delivery["message_id"], timestamp, body)
        result = await self.sender.send(subscription["url"], body, headers)
        attempt_no = int(delivery["attempts"]) + 1
        done = self.clock()
        update: dict[str, Any] = {
            "attempts": attempt_no,
            "last_status_code": result.status_code,
            "last_error": result.error,
            "lease_until": done,
        }
        if result.succeeded:
            update.update(state="delivered", delivered_at=done)
            self.metrics.attempts.labels(result="success").inc()
            self.metrics.delivery_seconds.observe(
                max((done - delivery["changed_at"]).total_seconds(), 0.0)
            )
        else:
            self.metrics.attempts.labels(
                result="network_error" if result.status_code is None else "http_error"
            ).inc()
            if result.status_code == 410:
                # The receiver said the endpoint is gone: stop sending to it.
                await self.subscriptions.set_state(
                    subscription["_id"], "disabled", "receiver answered 410 Gone"
                )
                update.update(state="failed")
            else:
                retry_at = next_attempt_at(
                    attempt=attempt_no,
                    now=done,
                    schedule_s=self.schedule_s,
                    retry_after_s=result.retry_after_s,
                )
                if retry_at is None:
                    update.update(state="failed")
                else:
                    update.update(next_attempt_at=retry_at, lease_until=retry_at)
        await self.queue.record_attempt(
            delivery,
            {
                "delivery_id": delivery["_id"],
                "message_id": delivery["message_id"],
                "subscription_id": subscription["_id"],
                "at": now,
                "status_code": result.status_code,
                "latency_ms": round(result.latency_s * 1000, 1),
                "error": result.error,
            },
            update,
        )
        log.info(
            "webhook_attempt",
            message_id=delivery["message_id"],
            kpi_id=delivery["kpi_id"],
            status_code=result.status_code,
            attempt=attempt_no,
            state=update.get("state"),
        )
        return True

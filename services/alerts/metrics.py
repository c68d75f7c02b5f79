"""The alerts service's metrics (one module, bounded labels: kind, outcome, result, state).

Deliveries pending and failing, for an operator: ``shinchoku_alerts_deliveries_queued{state}``
(pending to send, held for a paused or disabled subscription), ``..._deliveries_retrying``
(pending after a failed attempt), ``..._delivery_attempts_total{result}`` (the failure ratio),
``..._notifications_total{outcome="failed"}`` (retries exhausted) and
``..._endpoints_disabled_total``.
"""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from shared.metrics import metric_name

# webhook_sender.SendResult.result's values; the series start at zero.
ATTEMPT_RESULTS = ("success", "http_error", "timeout", "network_error", "refused")
DELIVERY_BUCKETS = (
    0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 3600.0, 86400.0
)  # fmt: skip


@dataclass(frozen=True)
class AlertsMetrics:
    notifications: Counter
    attempts: Counter
    delivery_seconds: Histogram
    attempt_seconds: Histogram
    deliveries: Gauge
    deliveries_retrying: Gauge
    notifications_by_state: Gauge
    subscriptions: Gauge
    disabled_endpoints: Gauge
    endpoints_disabled: Counter

    @classmethod
    def create(cls, registry: CollectorRegistry) -> AlertsMetrics:
        def name(noun: str) -> str:
            return metric_name("alerts", noun)

        metrics = cls(
            notifications=Counter(
                name("notifications"),
                "Notifications by kind and outcome: recorded, duplicate, muted, released, "
                "dropped, reminder, delivered, failed.",
                ["kind", "outcome"],
                registry=registry,
            ),
            attempts=Counter(
                name("delivery_attempts"),
                "Webhook delivery attempts by result: success, http_error, timeout, "
                "network_error, refused (SSRF guard).",
                ["result"],
                registry=registry,
            ),
            delivery_seconds=Histogram(
                name("delivery_latency_seconds"),
                "Time from a status change to the receiver's 2xx, per notification delivered.",
                buckets=DELIVERY_BUCKETS,
                registry=registry,
            ),
            attempt_seconds=Histogram(
                name("attempt_duration_seconds"),
                "Duration of one webhook HTTP attempt.",
                buckets=DELIVERY_BUCKETS[:10],
                registry=registry,
            ),
            deliveries=Gauge(
                name("deliveries_queued"),
                "Webhook messages in the queue: pending (to send) and held (waiting for a "
                "paused or disabled subscription to resume).",
                ["state"],
                registry=registry,
            ),
            deliveries_retrying=Gauge(
                name("deliveries_retrying"),
                "Pending webhook messages whose last attempt failed, waiting for a retry.",
                registry=registry,
            ),
            notifications_by_state=Gauge(
                name("notifications_waiting"),
                "Notifications not yet in a delivery, by state (waiting in a window, muted).",
                ["state"],
                registry=registry,
            ),
            subscriptions=Gauge(
                name("subscriptions"),
                "Subscriptions by state (active, paused, disabled).",
                ["state"],
                registry=registry,
            ),
            disabled_endpoints=Gauge(
                name("disabled_endpoints"),
                "Subscriptions disabled because their endpoint failed or answered 410.",
                registry=registry,
            ),
            endpoints_disabled=Counter(
                name("endpoints_disabled"),
                "Endpoints disabled by this process, by reason (gone, failing).",
                ["reason"],
                registry=registry,
            ),
        )
        for result in ATTEMPT_RESULTS:
            metrics.attempts.labels(result=result)
        for reason in ("gone", "failing"):
            metrics.endpoints_disabled.labels(reason=reason)
        return metrics

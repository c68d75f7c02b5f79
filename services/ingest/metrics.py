"""The ingest service's own metrics. Request latency and in-flight requests come from the shared
HTTP middleware: ``shinchoku_http_request_duration_seconds{service="ingest"}`` and
``shinchoku_http_requests_in_flight{service="ingest"}``.

Labels are small bounded sets: event type (the three ministry types, or ``invalid``), ministry
(the API key's, never the untrusted ``source``), outcome and reason code.
"""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from shared.events.contracts import MINISTRY_EVENT_TYPES
from shared.metrics import LATENCY_BUCKETS, metric_name

BATCH_SIZE_BUCKETS = (1, 2, 5, 10, 25, 50, 100, 250, 500, 1000)
# services.ingest.service.authentication.AuthFailure's values (a unit test keeps the two equal); the
# series start at zero.
AUTH_FAILURE_REASONS = ("missing", "malformed", "unknown", "revoked")


@dataclass(frozen=True)
class IngestMetrics:
    events: Counter
    produce_seconds: Histogram
    events_in_flight: Gauge
    request_events: Histogram
    auth_failures: Counter
    rate_limited: Counter

    @classmethod
    def create(cls, registry: CollectorRegistry) -> IngestMetrics:
        metrics = cls(
            events=Counter(
                metric_name("ingest", "events"),
                "Events received, by type, ministry, outcome (accepted, duplicate, rejected, "
                "in_flight, unavailable) and reason code.",
                ["event_type", "ministry", "outcome", "reason"],
                registry=registry,
            ),
            produce_seconds=Histogram(
                metric_name("ingest", "produce_duration_seconds"),
                "Time from handing a request's records to the producer to the broker's "
                "acknowledgement of all of them (acks=all).",
                buckets=LATENCY_BUCKETS,
                registry=registry,
            ),
            events_in_flight=Gauge(
                metric_name("ingest", "events_in_flight"),
                "Events handed to the producer and not yet acknowledged or failed.",
                registry=registry,
            ),
            request_events=Histogram(
                metric_name("ingest", "request_events"),
                "Events per accepted request (1 for POST /v1/events).",
                buckets=BATCH_SIZE_BUCKETS,
                registry=registry,
            ),
            auth_failures=Counter(
                metric_name("ingest", "auth_failures"),
                "Requests refused before reading the body: missing, malformed, unknown or "
                "revoked API key.",
                ["reason"],
                registry=registry,
            ),
            rate_limited=Counter(
                metric_name("ingest", "rate_limited_requests"),
                "Requests answered 429, by the key's ministry.",
                ["ministry"],
                registry=registry,
            ),
        )
        for reason in AUTH_FAILURE_REASONS:
            metrics.auth_failures.labels(reason=reason)
        return metrics

    def count_event(
        self, event_type: str, ministry: str, outcome: str, reason: str = "", count: int = 1
    ) -> None:
        label = event_type if event_type in MINISTRY_EVENT_TYPES else "invalid"
        self.events.labels(event_type=label, ministry=ministry, outcome=outcome, reason=reason).inc(
            count
        )

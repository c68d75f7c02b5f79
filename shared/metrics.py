"""Prometheus metric helpers. Each service builds its metrics on its own registry in its
composition root (no global registry: two app instances in one test process must not collide).

Names follow ``shinchoku_<service>_<noun>_<unit>`` (``_total`` for counters, base units:
seconds, records); labels are small bounded sets (event type, outcome, ministry, status, reason),
never KPI ids. ``promtool check metrics`` is clean on every service's ``/metrics``
(tests/e2e/test_dashboards.py). Where a label's values are known in advance (dead-letter reasons,
delivery results) the series are created at zero, so a dashboard shows 0 rather than "No data"
before the first occurrence and ``rate()``/``increase()`` see the first one.
"""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics

# The text exposition would add a ``<name>_created`` gauge beside every counter and histogram
# series: twice the series for no use (Prometheus does not read it from the text format).
disable_created_metrics()  # type: ignore[no-untyped-call]  # untyped in prometheus_client

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
AGE_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 3600.0, 86400.0)
# Why the consumer runner itself dead-letters a record (shared/events/kafka_binding.py and
# shared/consumer.py); handlers add their own reasons (e.g. unknown_subject), counted when seen.
DEAD_LETTER_REASONS = (
    "empty_record",
    "oversized_record",
    "invalid_json",
    "invalid_structure",
    "not_a_cloudevent",
    "unknown_type",
    "schema_violation",
    "no_handler",
    "handler_failed",
)


def metric_name(service: str, name: str) -> str:
    return f"shinchoku_{service}_{name}"


@dataclass(frozen=True)
class HttpMetrics:
    requests: Counter
    request_seconds: Histogram
    in_flight: Gauge

    @classmethod
    def create(cls, service: str, registry: CollectorRegistry) -> HttpMetrics:
        return cls(
            requests=Counter(
                metric_name(service, "http_requests"),
                "HTTP requests answered, by method, route template and status code.",
                ["method", "route", "status"],
                registry=registry,
            ),
            request_seconds=Histogram(
                metric_name(service, "http_request_duration_seconds"),
                "HTTP request latency by route template.",
                ["method", "route"],
                buckets=LATENCY_BUCKETS,
                registry=registry,
            ),
            in_flight=Gauge(
                metric_name(service, "http_requests_in_flight"),
                "HTTP requests being served now.",
                registry=registry,
            ),
        )


@dataclass(frozen=True)
class ConsumerMetrics:
    events: Counter
    batch_seconds: Histogram
    event_age_seconds: Histogram
    handler_retries: Counter
    dead_letters: Counter
    consumer_lag: Gauge
    retrying_seconds: Gauge
    stuck_partitions: Gauge

    @classmethod
    def create(cls, service: str, registry: CollectorRegistry) -> ConsumerMetrics:
        metrics = cls(
            events=Counter(
                metric_name(service, "consumer_events"),
                "Events consumed, by event type and outcome (processed, dead_letter_<reason>).",
                ["event_type", "outcome"],
                registry=registry,
            ),
            batch_seconds=Histogram(
                metric_name(service, "consumer_batch_duration_seconds"),
                "Time a handler took for one batch of events of one type.",
                ["event_type"],
                buckets=LATENCY_BUCKETS,
                registry=registry,
            ),
            event_age_seconds=Histogram(
                metric_name(service, "consumer_event_age_seconds"),
                "Time from an event's record being written to the topic (the Kafka record "
                "timestamp) to its handler finishing: the consumer's processing lag.",
                ["event_type"],
                buckets=AGE_BUCKETS,
                registry=registry,
            ),
            handler_retries=Counter(
                metric_name(service, "consumer_handler_retries"),
                "Handler attempts that failed and were retried (database or broker trouble).",
                ["event_type"],
                registry=registry,
            ),
            dead_letters=Counter(
                metric_name(service, "consumer_dead_letters"),
                "Records sent to the dead-letter topic, by reason.",
                ["reason"],
                registry=registry,
            ),
            consumer_lag=Gauge(
                metric_name(service, "consumer_lag_records"),
                "Records in the partition not yet consumed (high watermark minus position).",
                ["topic", "partition"],
                registry=registry,
            ),
            # One metric for every consumer, told apart by `service` (the naming convention).
            retrying_seconds=Gauge(
                "shinchoku_consumer_retrying_seconds",
                "How long the consumer has been retrying a transient failure (broker, database) "
                "without committing; 0 when it is not.",
                ["service"],
                registry=registry,
            ),
            stuck_partitions=Gauge(
                "shinchoku_consumer_stuck_partitions",
                "Partitions held back by the transient failure the consumer is retrying.",
                ["service"],
                registry=registry,
            ),
        )
        for reason in DEAD_LETTER_REASONS:
            metrics.dead_letters.labels(reason=reason)
        return metrics

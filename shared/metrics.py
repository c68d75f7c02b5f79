"""Prometheus metric helpers. Each service builds its metrics on its own registry in its
composition root (no global registry: two app instances in one test process must not collide).

A metric only one service measures is named ``shinchoku_<service>_<noun>_<unit>`` (``_total``
for counters, base units: seconds, records). A concept several services measure (HTTP requests,
consumer lag, dead letters, events consumed...) is ONE metric, ``shinchoku_<noun>_<unit>``, with
a ``service`` label (``shinchoku_consumer_lag_records{service="kpi"}``), so a rule or a panel
reads it once rather than joining per-service names with ``or``. Labels are small bounded sets
(event type, outcome, ministry, status, reason), never KPI ids. ``promtool check metrics`` is
clean on every service's ``/metrics`` (tests/e2e/test_dashboards.py). Where a label's values
are known in advance (dead-letter reasons, delivery results) the series are created at zero, so
a dashboard shows 0 rather than "No data" before the first occurrence and
``rate()``/``increase()`` see the first one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

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
    """A metric only `service` measures."""
    return f"shinchoku_{service}_{name}"


def shared_metric_name(name: str) -> str:
    """A metric several services measure; each sets its `service` label (`ServiceLabelled`)."""
    return f"shinchoku_{name}"


M = TypeVar("M", Counter, Gauge, Histogram)


class ServiceLabelled(Generic[M]):
    """A shared metric with this service's `service` label bound: ``.labels(...)`` takes the
    metric's other labels only, as a per-service metric's would."""

    def __init__(self, metric: M, service: str) -> None:
        self.metric: M = metric
        self.service = service

    def labels(self, **labels: str) -> M:
        child: M = self.metric.labels(service=self.service, **labels)
        return child


@dataclass(frozen=True)
class HttpMetrics:
    requests: ServiceLabelled[Counter]
    request_seconds: ServiceLabelled[Histogram]
    in_flight: Gauge

    @classmethod
    def create(cls, service: str, registry: CollectorRegistry) -> HttpMetrics:
        return cls(
            requests=ServiceLabelled(
                Counter(
                    shared_metric_name("http_requests"),
                    "HTTP requests answered, by service, method, route template and status code.",
                    ["service", "method", "route", "status"],
                    registry=registry,
                ),
                service,
            ),
            request_seconds=ServiceLabelled(
                Histogram(
                    shared_metric_name("http_request_duration_seconds"),
                    "HTTP request latency by service and route template.",
                    ["service", "method", "route"],
                    buckets=LATENCY_BUCKETS,
                    registry=registry,
                ),
                service,
            ),
            in_flight=Gauge(
                shared_metric_name("http_requests_in_flight"),
                "HTTP requests being served now, by service.",
                ["service"],
                registry=registry,
            ).labels(service=service),
        )


@dataclass(frozen=True)
class ConsumerMetrics:
    events: ServiceLabelled[Counter]
    batch_seconds: ServiceLabelled[Histogram]
    event_age_seconds: ServiceLabelled[Histogram]
    handler_retries: ServiceLabelled[Counter]
    dead_letters: ServiceLabelled[Counter]
    consumer_lag: ServiceLabelled[Gauge]
    retrying_seconds: Gauge
    stuck_partitions: Gauge

    @classmethod
    def create(cls, service: str, registry: CollectorRegistry) -> ConsumerMetrics:
        def counter(name: str, help_: str, labels: list[str]) -> ServiceLabelled[Counter]:
            metric = Counter(
                shared_metric_name(name), help_, ["service", *labels], registry=registry
            )
            return ServiceLabelled(metric, service)

        def histogram(
            name: str, help_: str, labels: list[str], buckets: tuple[float, ...]
        ) -> ServiceLabelled[Histogram]:
            metric = Histogram(
                shared_metric_name(name),
                help_,
                ["service", *labels],
                buckets=buckets,
                registry=registry,
            )
            return ServiceLabelled(metric, service)

        metrics = cls(
            events=counter(
                "consumer_events",
                "Events consumed, by service, event type and outcome (processed, "
                "dead_letter_<reason>).",
                ["event_type", "outcome"],
            ),
            batch_seconds=histogram(
                "consumer_batch_duration_seconds",
                "Time a handler took for one batch of events of one type.",
                ["event_type"],
                LATENCY_BUCKETS,
            ),
            event_age_seconds=histogram(
                "consumer_event_age_seconds",
                "Time from an event's record being written to the topic (the Kafka record "
                "timestamp) to its handler finishing: the consumer's processing lag.",
                ["event_type"],
                AGE_BUCKETS,
            ),
            handler_retries=counter(
                "consumer_handler_retries",
                "Handler attempts that failed and were retried (database or broker trouble).",
                ["event_type"],
            ),
            dead_letters=counter(
                "consumer_dead_letters",
                "Records sent to the dead-letter topic, by service and reason.",
                ["reason"],
            ),
            consumer_lag=ServiceLabelled(
                Gauge(
                    shared_metric_name("consumer_lag_records"),
                    "Records in the partition not yet consumed (high watermark minus position).",
                    ["service", "topic", "partition"],
                    registry=registry,
                ),
                service,
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

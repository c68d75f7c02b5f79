"""Ingest use case: validate against the catalogue, deduplicate, publish, and only then accept."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from prometheus_client import CollectorRegistry, Counter, Histogram

from services.ingest.adapters.publisher import KafkaEventPublisher
from services.ingest.adapters.receipts import Claim, ReceiptStore
from services.ingest.domain.validation import Violation, check_event
from shared.catalogue_store import CatalogueStore
from shared.events.cloudevents import CloudEvent
from shared.events.contracts import MeasureAssessed, ministry_code_of, subject_id
from shared.metrics import LATENCY_BUCKETS, metric_name


class Outcome(StrEnum):
    ACCEPTED = "accepted"
    DUPLICATE = "duplicate"
    REJECTED = "rejected"
    IN_FLIGHT = "in_flight"
    UNAVAILABLE = "unavailable"


@dataclass(frozen=True, slots=True)
class Result:
    event: CloudEvent
    outcome: Outcome
    violations: tuple[Violation, ...] = ()


@dataclass(frozen=True)
class IngestMetrics:
    events: Counter
    produce_seconds: Histogram

    @classmethod
    def create(cls, registry: CollectorRegistry) -> IngestMetrics:
        return cls(
            events=Counter(
                metric_name("ingest", "events"),
                "Events received, by type, ministry, outcome (accepted, duplicate...) and reason.",
                ["event_type", "ministry", "outcome", "reason"],
                registry=registry,
            ),
            produce_seconds=Histogram(
                metric_name("ingest", "produce_duration_seconds"),
                "Time from publishing a batch to the broker's acknowledgement of all of it.",
                buckets=LATENCY_BUCKETS,
                registry=registry,
            ),
        )


@dataclass
class IngestHandler:
    catalogue: CatalogueStore
    receipts: ReceiptStore
    publisher: KafkaEventPublisher
    metrics: IngestMetrics
    clock: Callable[[], datetime]

    async def submit(self, events: list[CloudEvent]) -> list[Result]:
        """Results in the order of `events`. ACCEPTED only after the broker acknowledged."""
        now = self.clock()
        today = now.date()
        items = await self.catalogue.items(
            [subject_id(e) for e in events if not isinstance(e.data, MeasureAssessed)]
        )
        results: dict[int, Result] = {}
        valid: list[int] = []
        for index, event in enumerate(events):
            ministry = ministry_code_of(event.source)
            if isinstance(event.data, MeasureAssessed):
                item = await self.catalogue.measure(event.data.measure_id)
            else:
                item = items.get(subject_id(event))
            violations = check_event(event, catalogue_item=item, ministry=ministry, today=today)
            if violations:
                results[index] = Result(event, Outcome.REJECTED, tuple(violations))
            else:
                valid.append(index)
        claims = await self.receipts.claim([events[i] for i in valid], now)
        to_publish: list[int] = []
        for index, claim in zip(valid, claims, strict=True):
            if claim is Claim.NEW:
                to_publish.append(index)
            else:
                outcome = Outcome.DUPLICATE if claim is Claim.DUPLICATE else Outcome.IN_FLIGHT
                results[index] = Result(events[index], outcome)
        if to_publish:
            batch = [events[i] for i in to_publish]
            with self.metrics.produce_seconds.time():
                errors = await self.publisher.publish_many(batch)
            acked = [e for e, err in zip(batch, errors, strict=True) if err is None]
            failed = [e for e, err in zip(batch, errors, strict=True) if err is not None]
            await self.receipts.confirm(acked, self.clock())
            await self.receipts.release(failed)
            for index, error in zip(to_publish, errors, strict=True):
                outcome = Outcome.ACCEPTED if error is None else Outcome.UNAVAILABLE
                results[index] = Result(events[index], outcome)
        ordered = [results[i] for i in range(len(events))]
        for result in ordered:
            reason = result.violations[0].code if result.violations else ""
            self.metrics.events.labels(
                event_type=result.event.type,
                ministry=ministry_code_of(result.event.source) or "unknown",
                outcome=result.outcome.value,
                reason=reason,
            ).inc()
        return ordered

"""Ingest's handler graph for the unit tier: built by the composition root
(services/ingest/composition.py) on the in-memory adapters, with a clock the test moves."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from prometheus_client import CollectorRegistry

from services.ingest.adapters.memory import (
    MemoryCatalogue,
    MemoryEventPublisher,
    MemoryKeyStore,
    MemoryOwnershipRecords,
    MemoryReceiptStore,
)
from services.ingest.composition import IngestAdapters, IngestService, build_service
from services.ingest.metrics import IngestMetrics
from services.ingest.ports import CatalogueEntry
from services.ingest.settings import IngestSettings
from shared.events.cloudevents import CloudEvent
from shared.events.contracts import ministry_event_adapter
from shared.events.validation import ItemFacts

# Catalogue entries the unit tests report on (the same ids as the real catalogue's, see
# tests/support/ingest.py), with their facts written out.
PERCENT_KPI = "kpi.mynumber-card-coverage"
MILESTONE = "ms.dfft-g7-2023-outcomes"
MEASURE = "m.4-1-3.digital-inclusion-support"
RETIRED_KPI = "kpi.retired-example"
OWNER = "digital"


def unit_catalogue() -> MemoryCatalogue:
    return MemoryCatalogue(
        {
            PERCENT_KPI: CatalogueEntry(
                ItemFacts(PERCENT_KPI, "kpi", "%"), frozenset({"digital", "mic"})
            ),
            MILESTONE: CatalogueEntry(ItemFacts(MILESTONE, "milestone"), frozenset({"digital"})),
            RETIRED_KPI: CatalogueEntry(
                ItemFacts(RETIRED_KPI, "kpi", "%", retired=True), frozenset({"digital"})
            ),
        },
        {MEASURE: CatalogueEntry(ItemFacts(MEASURE, "measure"), frozenset({"digital"}))},
    )


@dataclass
class ManualClock:
    """The one clock of the graph: read by every use case, moved by the test."""

    now: datetime = field(default_factory=lambda: datetime.now(UTC).replace(microsecond=0))

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@dataclass
class MonotonicClock:
    seconds: float = 0.0

    def __call__(self) -> float:
        return self.seconds


@dataclass
class MemoryIngest:
    """The service and the adapters it was built on, for the test to look into."""

    service: IngestService
    catalogue: MemoryCatalogue
    receipts: MemoryReceiptStore
    publisher: MemoryEventPublisher
    keys: MemoryKeyStore
    ownership: MemoryOwnershipRecords
    clock: ManualClock
    monotonic: MonotonicClock
    metrics: IngestMetrics
    registry: CollectorRegistry


def memory_ingest(**settings: Any) -> MemoryIngest:
    """The handler graph as `create_app` builds it, on fresh in-memory adapters."""
    config = IngestSettings.model_validate({"log_json": True, **settings})
    catalogue = unit_catalogue()
    receipts = MemoryReceiptStore(takeover_after=timedelta(seconds=config.takeover_after_s))
    publisher = MemoryEventPublisher()
    keys = MemoryKeyStore()
    ownership = MemoryOwnershipRecords(catalogue)
    clock, monotonic = ManualClock(), MonotonicClock()
    registry = CollectorRegistry()
    metrics = IngestMetrics.create(registry)
    adapters = IngestAdapters(
        catalogue=catalogue,
        receipts=receipts,
        publisher=publisher,
        keys=keys,
        key_lookup=keys,
        ownership=ownership,
    )
    service = build_service(
        config,
        adapters,
        clock=clock,
        metrics=metrics,
        monotonic=monotonic,
    )
    return MemoryIngest(
        service,
        catalogue,
        receipts,
        publisher,
        keys,
        ownership,
        clock,
        monotonic,
        metrics,
        registry,
    )


def kpi_observed(
    clock: ManualClock,
    value: float = 96.6,
    *,
    kpi_id: str = PERCENT_KPI,
    ministry: str = OWNER,
    event_id: str = "e-1",
    **attributes: Any,
) -> CloudEvent:
    """A `shinchoku.kpi.observed.v1` event as parsed from a request, timed by `clock`."""
    event: CloudEvent = ministry_event_adapter.validate_python(
        {
            "specversion": "1.0",
            "id": event_id,
            "source": f"/ministries/{ministry}",
            "type": "shinchoku.kpi.observed.v1",
            "subject": kpi_id,
            "time": clock.now,
            "data": {
                "kpi_id": kpi_id,
                "value": value,
                "as_of": clock.now.date().isoformat(),
                "note": "unit test",
            },
            **attributes,
        }
    )
    return event

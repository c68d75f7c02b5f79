"""The one composition root of the kpi service: its handler graph, from settings, a clock and
the adapters behind its ports (MongoDB and Kafka in production, services/kpi/adapters/memory.py
in the unit tier). No FastAPI here: `bootstrap.create_app` (its lifespan), `shinchoku replay`,
benchmarks and tests all build from `build_kpi`, and the event-type -> handler map is written
once, in `KpiService.handlers`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from services.kpi.adapters.catalogue import MongoCatalogue
from services.kpi.adapters.divergences import MongoDivergenceStore
from services.kpi.adapters.ownership import MongoOwnershipLedger
from services.kpi.adapters.repository import KpiRepository
from services.kpi.adapters.state_cache import BsonStateCache
from services.kpi.metrics import KpiMetrics
from services.kpi.ports import (
    Catalogue,
    DivergenceStore,
    EventStore,
    Ownership,
    OwnershipLedger,
    StateCache,
    StateRepository,
    StatusSink,
)
from services.kpi.service.assessments import Assessments
from services.kpi.service.compaction import Compactor
from services.kpi.service.definitions import Definitions
from services.kpi.service.divergence import DivergenceTracker
from services.kpi.service.evaluation import StateUpdater, SubjectEvents
from services.kpi.service.outbox import OutboxPublisher
from services.kpi.service.ownership import OwnershipChanges
from services.kpi.service.queries import AS_OF_EVENTS_LIMIT, KpiQueries
from services.kpi.service.state_cache import LatestStates
from services.kpi.service.sweep import Sweep
from services.kpi.settings import KpiSettings
from shared.catalogue.overrides import OwnershipStore
from shared.catalogue_store import CatalogueStore
from shared.clock import Clock, utc_now
from shared.consumer_types import BatchHandler
from shared.events.contracts import (
    MINISTRY_EVENT_TYPES,
    OWNERSHIP_EVENT_TYPES,
    ItemOwnersChangedEvent,
    KpiObservedEvent,
    MeasureAssessedEvent,
    MilestoneReportedEvent,
)
from shared.partitions import PartitionOwnership

# What the kpi consumer reads from the events topic; an item's events after an ownership change
# are judged with its new owners (the runner keeps the change in its partition's order).
EVENT_TYPES = {**MINISTRY_EVENT_TYPES, **OWNERSHIP_EVENT_TYPES}
ORDERED_TYPES = OWNERSHIP_EVENT_TYPES


@dataclass(frozen=True)
class KpiAdapters:
    """What the kpi service's ports are implemented by."""

    catalogue: Catalogue
    states: StateRepository
    events: EventStore
    ownership_ledger: OwnershipLedger
    publisher: StatusSink
    new_state_cache: Callable[[], StateCache]
    # None: divergences are not tracked (a replay rebuilds states only).
    divergences: DivergenceStore | None = None


@dataclass(frozen=True)
class KpiService:
    """The kpi service's handler graph."""

    subject_events: SubjectEvents
    assessments: Assessments
    ownership_changes: OwnershipChanges
    sweep: Sweep
    divergences: DivergenceTracker | None
    queries: KpiQueries
    updater: StateUpdater
    states: LatestStates
    outbox: OutboxPublisher
    compactor: Compactor

    def handlers(self) -> dict[str, BatchHandler]:
        """The consumer's handler per event type: each ministry batch, then the divergence of
        the measures it concerns (when tracked)."""
        tracker = self.divergences
        after: Callable[[BatchHandler], BatchHandler] = (
            (lambda handler: handler) if tracker is None else tracker.after
        )
        return {
            KpiObservedEvent.TYPE: after(self.subject_events.on_subject_events),
            MilestoneReportedEvent.TYPE: after(self.subject_events.on_subject_events),
            MeasureAssessedEvent.TYPE: after(self.assessments.on_assessments),
            ItemOwnersChangedEvent.TYPE: self.ownership_changes.on_owners_changed,
        }


def build_kpi(
    adapters: KpiAdapters,
    *,
    metrics: KpiMetrics,
    clock: Clock = utc_now,
    wall_clock: Clock = utc_now,
    ownership: Ownership | None = None,
    settings: KpiSettings | None = None,
    prune_threshold: int = 1000,
) -> KpiService:
    """The handler graph. `clock` is the service's time (the day subjects are evaluated for; it
    may be simulated), `wall_clock` real time (status events are stamped with it, and the
    `time` rule compares senders' real time with it). `ownership` decides which subjects this
    instance writes (all of them when None: a replay, a test)."""
    owned: Ownership = ownership or PartitionOwnership.everything()
    outbox = OutboxPublisher(adapters.states, adapters.publisher, metrics)
    states = LatestStates(adapters.states, owned, outbox, metrics, adapters.new_state_cache)
    compactor = Compactor(
        adapters.states, states, outbox, owned, wall_clock, prune_threshold=prune_threshold
    )
    updater = StateUpdater(
        asyncio.Lock(), adapters.states, states, outbox, compactor, owned, clock, wall_clock
    )
    subject_events = SubjectEvents(
        Definitions(adapters.catalogue), adapters.events, updater, owned, clock, wall_clock
    )
    queries = KpiQueries(
        adapters.states,
        adapters.events,
        as_of_events_limit=settings.as_of_events_limit if settings else AS_OF_EVENTS_LIMIT,
        max_time_ms=(max(round(settings.history_read_max_time_s * 1000), 1) if settings else None),
    )
    divergences = (
        None
        if adapters.divergences is None
        else DivergenceTracker(
            adapters.divergences,
            queries,
            adapters.catalogue,
            adapters.publisher,
            clock,
            wall_clock,
        )
    )
    return KpiService(
        subject_events=subject_events,
        assessments=Assessments(adapters.catalogue, adapters.events, clock, wall_clock),
        ownership_changes=OwnershipChanges(
            adapters.ownership_ledger, subject_events.redefine, wall_clock
        ),
        sweep=Sweep(adapters.catalogue, updater, states, compactor, owned),
        divergences=divergences,
        queries=queries,
        updater=updater,
        states=states,
        outbox=outbox,
        compactor=compactor,
    )


def mongo_adapters(
    db: AsyncDatabase[dict[str, Any]],
    catalogue: CatalogueStore,
    publisher: StatusSink,
    *,
    track_divergence: bool = True,
) -> KpiAdapters:
    """The production adapters: the kpi database (FerretDB) and a status sink."""
    repository = KpiRepository(db)
    return KpiAdapters(
        catalogue=MongoCatalogue(catalogue),
        states=repository,
        events=repository,
        ownership_ledger=MongoOwnershipLedger(OwnershipStore(db)),
        publisher=publisher,
        new_state_cache=BsonStateCache,
        divergences=MongoDivergenceStore(db) if track_divergence else None,
    )

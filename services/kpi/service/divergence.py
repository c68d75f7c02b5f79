"""Publishes divergence episodes (domain/divergence.py): after each batch of self-assessments
or subject events, the measures concerned are rolled up again (as GET
/v1/measures/{id}/status does), compared with the divergence recorded for them, and a change
is published to the status topic as ``shinchoku.measure.divergence_changed.v1``.

Published first, recorded after: a crash in between publishes the same change again under the
same deterministic id, which the alerts service deduplicates (one notification per
subscription, measure, episode and kind). Nothing is lost.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from services.kpi.domain.divergence import event_id, next_divergence
from services.kpi.ports import Catalogue, DivergenceStore, StatusSink
from services.kpi.service.queries import KpiQueries
from shared.clock import Clock
from shared.consumer_types import BatchHandler, Rejection
from shared.events.cloudevents import CloudEvent
from shared.events.contracts import (
    MeasureAssessed,
    MeasureDivergenceChangedEvent,
    subject_id,
)
from shared.logs import get_logger

log = get_logger(__name__)


@dataclass
class DivergenceTracker:
    store: DivergenceStore
    queries: KpiQueries
    catalogue: Catalogue
    publisher: StatusSink
    # Service time: the day of the rollup.
    clock: Clock
    # Real time, as status changes are stamped (downstream latencies).
    wall_clock: Clock

    async def check(self, measure_ids: Iterable[str]) -> int:
        """Roll the measures up again and publish their divergence changes; how many. Every
        measure checked gets a record: a measure has one once it has been assessed."""
        published = 0
        today = self.clock().date()
        for measure_id in sorted(set(measure_ids)):
            rollup = await self.queries.measure_rollup(measure_id)
            previous = await self.store.get(measure_id)
            record, change = next_divergence(previous, rollup, today)
            if change is not None:
                event = MeasureDivergenceChangedEvent(
                    specversion="1.0",
                    id=event_id(measure_id, record.version),
                    source="/services/kpi",
                    type="shinchoku.measure.divergence_changed.v1",
                    subject=measure_id,
                    time=self.wall_clock(),
                    partitionkey=measure_id,
                    data=change,
                )
                await self.publisher.publish([event.to_json_dict()])
                published += 1
                log.info(
                    "divergence_changed",
                    measure_id=measure_id,
                    divergence=change.divergence,
                    previous_divergence=change.previous_divergence,
                    episode_id=change.episode_id,
                    event_id=event.id,
                )
            if previous is None or record != previous:
                await self.store.put(measure_id, record)
        return published

    async def measures_of(self, events: Sequence[CloudEvent]) -> set[str]:
        """The measures whose divergence a batch of ministry events may change: those assessed
        in it, and the assessed measures of its KPIs and milestones (a measure never assessed
        cannot diverge, and costs nothing)."""
        measures = {e.data.measure_id for e in events if isinstance(e.data, MeasureAssessed)}
        subjects = {subject_id(e) for e in events if not isinstance(e.data, MeasureAssessed)}
        if subjects:
            parents = await self.catalogue.measures_of(sorted(subjects))
            measures |= await self.store.assessed(sorted(parents))
        return measures

    def after(self, handler: BatchHandler) -> BatchHandler:
        """`handler`, then the divergence check of the measures its batch concerns."""

        async def handle(events: Sequence[CloudEvent]) -> Sequence[Rejection]:
            rejections = await handler(events)
            await self.check(await self.measures_of(events))
            return rejections

        return handle

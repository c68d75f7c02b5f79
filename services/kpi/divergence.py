"""Publishes divergence episodes (domain/divergence.py): after each batch of self-assessments
or subject events, the measures concerned are rolled up again (as GET
/v1/measures/{id}/status does), compared with the divergence recorded for them, and a change
is published to the status topic as ``shinchoku.measure.divergence_changed.v1``.

Published first, recorded after: a crash in between publishes the same change again under the
same deterministic id, which the alerts service deduplicates (one notification per
subscription, measure, episode and kind). Nothing is lost.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from services.kpi.adapters.status_publisher import StatusPublisher
from services.kpi.domain.divergence import DivergenceRecord, event_id, next_divergence
from services.kpi.queries import KpiQueries
from shared.catalogue_store import CatalogueStore
from shared.consumer import BatchHandler, Rejection
from shared.events.cloudevents import CloudEvent
from shared.events.contracts import (
    MeasureAssessed,
    MeasureDivergenceChangedEvent,
    subject_id,
)
from shared.logs import get_logger

log = get_logger(__name__)
DIVERGENCES = "kpi_divergences"
Document = dict[str, Any]


class DivergenceTracker:
    def __init__(
        self,
        db: AsyncDatabase[Document],
        queries: KpiQueries,
        catalogue: CatalogueStore,
        publisher: StatusPublisher,
        clock: Callable[[], datetime],
    ) -> None:
        self._c = db[DIVERGENCES]
        self._queries = queries
        self._catalogue = catalogue
        self._publisher = publisher
        self._clock = clock

    async def check(self, measure_ids: Iterable[str]) -> int:
        """Roll the measures up again and publish their divergence changes; how many. Every
        measure checked gets a record: a measure has one once it has been assessed."""
        published = 0
        today = self._clock().date()
        for measure_id in sorted(set(measure_ids)):
            rollup = await self._queries.measure_rollup(measure_id)
            doc = await self._c.find_one({"_id": measure_id})
            previous = (
                None
                if doc is None
                else DivergenceRecord.model_validate({k: v for k, v in doc.items() if k != "_id"})
            )
            record, change = next_divergence(previous, rollup, today)
            if change is not None:
                event = MeasureDivergenceChangedEvent(
                    specversion="1.0",
                    id=event_id(measure_id, record.version),
                    source="/services/kpi",
                    type="shinchoku.measure.divergence_changed.v1",
                    subject=measure_id,
                    # The real time, as status changes are stamped (downstream latencies).
                    time=datetime.now(UTC),
                    partitionkey=measure_id,
                    data=change,
                )
                await self._publisher.publish([event.to_json_dict()])
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
                await self._c.replace_one(
                    {"_id": measure_id},
                    {"_id": measure_id, **record.model_dump(mode="json")},
                    upsert=True,
                )
        return published

    async def measures_of(self, events: Sequence[CloudEvent]) -> set[str]:
        """The measures whose divergence a batch of ministry events may change: those assessed
        in it, and the assessed measures of its KPIs and milestones (a measure never assessed
        cannot diverge, and costs nothing)."""
        measures = {e.data.measure_id for e in events if isinstance(e.data, MeasureAssessed)}
        subjects = {subject_id(e) for e in events if not isinstance(e.data, MeasureAssessed)}
        if subjects:
            items = await self._catalogue.items(sorted(subjects))
            parents = sorted({str(i["measure_id"]) for i in items.values() if i.get("measure_id")})
            assessed = self._c.find({"_id": {"$in": parents}}, {"_id": 1})
            measures |= {doc["_id"] async for doc in assessed}
        return measures

    def after(self, handler: BatchHandler) -> BatchHandler:
        """`handler`, then the divergence check of the measures its batch concerns."""

        async def handle(events: Sequence[CloudEvent]) -> Sequence[Rejection]:
            rejections = await handler(events)
            await self.check(await self.measures_of(events))
            return rejections

        return handle

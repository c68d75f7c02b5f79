"""Self-assessments of measures (measure.assessed): checked as ingest checks them and stored;
the divergence they may open is service/divergence.py's."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from services.kpi.ports import Catalogue, EventStore, MeasureEntry, ReceivedAssessment
from services.kpi.service.intake import recheck
from shared.clock import Clock
from shared.consumer_types import Rejection
from shared.events.cloudevents import CloudEvent
from shared.events.contracts import MeasureAssessed


@dataclass
class Assessments:
    """The consumer's handler for measure.assessed batches: checked and stored."""

    catalogue: Catalogue
    events: EventStore
    clock: Clock
    wall_clock: Clock

    async def on_assessments(self, events: Sequence[CloudEvent]) -> Sequence[Rejection]:
        stored: list[ReceivedAssessment] = []
        rejections: list[Rejection] = []
        now, received_at = self.clock(), self.wall_clock()
        measures: dict[str, MeasureEntry | None] = {}
        for event in events:
            data = event.data
            assert isinstance(data, MeasureAssessed)
            if data.measure_id not in measures:
                measures[data.measure_id] = await self.catalogue.measure(data.measure_id)
            measure = measures[data.measure_id]
            rejection = recheck(
                event,
                None if measure is None else measure.facts,
                frozenset() if measure is None else measure.owners,
                now,
                received_at,
            )
            if rejection is not None:
                rejections.append(rejection)
                continue
            stored.append(
                ReceivedAssessment(
                    key=event.dedup_key,
                    event_id=event.id,
                    measure_id=data.measure_id,
                    rating=data.rating.value,
                    as_of=data.as_of,
                    narrative=data.narrative,
                    time=event.time or now,
                )
            )
        await self.events.store_assessments(stored)
        return rejections

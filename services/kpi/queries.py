"""Read-side use cases of the kpi service: status as of a date, measure rollups, scorecards."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from services.kpi.adapters.definitions import definition_from_catalogue
from services.kpi.adapters.repository import KpiRepository
from services.kpi.domain.history import evaluate_kpi_as_of, evaluate_milestone_as_of
from services.kpi.domain.model import (
    UNKNOWN_ARRIVAL,
    AssessmentRating,
    Evaluation,
    KpiDefinition,
    MilestoneReport,
    Observation,
    ReportedState,
    SelfAssessment,
    Status,
    SubjectKind,
)
from services.kpi.domain.rollup import (
    ChildStatus,
    MeasureRollup,
    Scorecard,
    ministry_scorecards,
    rollup_measure,
)
from shared.catalogue_store import CatalogueStore

Document = dict[str, Any]
# An as_of evaluation folds at most this many of the latest events up to the date (the state
# keeps a bounded window anyway; relative-target anchors older than this would be missed).
AS_OF_EVENTS_LIMIT = 100_000


def _observation(doc: Document) -> Observation | MilestoneReport:
    data = doc["data"]
    as_of = date.fromisoformat(doc["as_of"])
    if "value" in data:
        return Observation(
            event_id=doc["event_id"],
            value=data["value"],
            as_of=as_of,
            received_at=doc["time"],
            arrival=doc.get("arrival", UNKNOWN_ARRIVAL),
        )
    return MilestoneReport(
        event_id=doc["event_id"],
        state=ReportedState(data["state"]),
        percent_complete=data.get("percent_complete"),
        expected_completion=(
            date.fromisoformat(data["expected_completion"])
            if data.get("expected_completion")
            else None
        ),
        as_of=as_of,
        received_at=doc["time"],
        arrival=doc.get("arrival", UNKNOWN_ARRIVAL),
    )


def _child(doc: Document) -> ChildStatus:
    return ChildStatus(
        subject_id=doc["subject_id"],
        subject_kind=SubjectKind(doc["kind"]),
        status=Status(doc["status"]),
        ministries=tuple(doc.get("ministries", [])),
    )


def _assessment(doc: Document | None) -> SelfAssessment | None:
    if doc is None:
        return None
    return SelfAssessment(
        event_id=doc["event_id"],
        measure_id=doc["measure_id"],
        rating=AssessmentRating(doc["rating"]),
        as_of=date.fromisoformat(doc["as_of"]),
        received_at=doc["time"],
        comment=doc.get("narrative"),
    )


@dataclass
class KpiQueries:
    repository: KpiRepository
    catalogue: CatalogueStore

    async def evaluation_as_of(self, item: Document, on: date) -> Evaluation:
        """Exact: the state is rebuilt from the stored events with as_of <= `on`."""
        definition = definition_from_catalogue(item)
        events = [
            _observation(doc)
            for doc in await self.repository.observations(
                item["_id"], limit=AS_OF_EVENTS_LIMIT, until=on.isoformat()
            )
        ]
        if isinstance(definition, KpiDefinition):
            return evaluate_kpi_as_of(
                definition, [e for e in events if isinstance(e, Observation)], on
            )
        return evaluate_milestone_as_of(
            definition, [e for e in events if isinstance(e, MilestoneReport)], on
        )

    async def measure_rollup(self, measure_id: str) -> MeasureRollup:
        states = await self.repository.states_for_measure(measure_id)
        assessment = await self.repository.latest_assessment(measure_id)
        return rollup_measure(measure_id, [_child(doc) for doc in states], _assessment(assessment))

    async def scorecard(self, ministry: str) -> Scorecard:
        states = await self.repository.states_for_ministry(ministry)
        measure_ids = sorted({doc["measure_id"] for doc in states})
        assessments = await self.repository.latest_assessments(measure_ids)
        by_measure: dict[str, list[ChildStatus]] = {}
        for doc in states:
            by_measure.setdefault(doc["measure_id"], []).append(_child(doc))
        rollups = [
            rollup_measure(m, children, _assessment(assessments.get(m)))
            for m, children in by_measure.items()
        ]
        cards = ministry_scorecards([_child(doc) for doc in states], rollups)
        return cards.get(ministry) or Scorecard(
            ministry=ministry, counts=dict.fromkeys(Status, 0), total=0
        )

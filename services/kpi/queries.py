"""Read-side use cases of the kpi service: status as of a date, measure rollups, scorecards."""

from __future__ import annotations

import asyncio
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
# keeps a bounded window anyway; relative-target anchors older than this would be missed, and
# the answer says so). A setting (`as_of_events_limit`).
AS_OF_EVENTS_LIMIT = 10_000


@dataclass(frozen=True)
class HistoryAsOf:
    """A subject's evaluation on a past date, with the stored events it folded (ascending)."""

    evaluation: Evaluation
    events: list[Document]
    # True when older events up to the date exist than the ones folded.
    truncated: bool


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


def _evaluate_as_of(item: Document, docs: list[Document], on: date) -> Evaluation:
    """CPU-bound (up to `as_of_events_limit` events): run off the event loop."""
    definition = definition_from_catalogue(item)
    events = [_observation(doc) for doc in docs]
    if isinstance(definition, KpiDefinition):
        return evaluate_kpi_as_of(definition, [e for e in events if isinstance(e, Observation)], on)
    return evaluate_milestone_as_of(
        definition, [e for e in events if isinstance(e, MilestoneReport)], on
    )


@dataclass
class KpiQueries:
    repository: KpiRepository
    catalogue: CatalogueStore
    as_of_events_limit: int = AS_OF_EVENTS_LIMIT
    # What one history read may cost the database server (None: unbounded).
    max_time_ms: int | None = None

    async def evaluation_as_of(self, item: Document, on: date) -> Evaluation:
        return (await self.history_as_of(item, on)).evaluation

    async def history_as_of(self, item: Document, on: date) -> HistoryAsOf:
        """The state rebuilt from the latest `as_of_events_limit` stored events with as_of <=
        `on` (exact unless `truncated`), in one read of the history, evaluated in a worker
        thread so a long history does not hold the event loop (and the consumer) meanwhile."""
        docs = await self.repository.observations(
            item["_id"],
            limit=self.as_of_events_limit + 1,
            until=on.isoformat(),
            max_time_ms=self.max_time_ms,
        )
        truncated = len(docs) > self.as_of_events_limit
        docs = docs[-self.as_of_events_limit :]
        evaluation = await asyncio.to_thread(_evaluate_as_of, item, docs, on)
        return HistoryAsOf(evaluation, docs, truncated)

    async def latest_history(self, subject_id: str, limit: int) -> list[Document]:
        """The subject's latest `limit` stored events, bounded like `history_as_of`."""
        return await self.repository.observations(
            subject_id, limit=limit, max_time_ms=self.max_time_ms
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

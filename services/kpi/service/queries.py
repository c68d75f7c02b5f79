"""Read-side use cases of the kpi service: status as of a date, measure rollups, scorecards."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import date

from services.kpi.domain.history import evaluate_kpi_as_of, evaluate_milestone_as_of
from services.kpi.domain.model import (
    Evaluation,
    KpiDefinition,
    MilestoneReport,
    Observation,
    ReportedState,
    Status,
)
from services.kpi.domain.rollup import (
    ChildStatus,
    MeasureRollup,
    Scorecard,
    ministry_scorecards,
    rollup_measure,
)
from services.kpi.domain.transition import Definition
from services.kpi.ports import EventStore, StateRepository, StoredEvent, SubjectStatus

# An as_of evaluation folds at most this many of the latest events up to the date (the state
# keeps a bounded window anyway; relative-target anchors older than this would be missed, and
# the answer says so). A setting (`as_of_events_limit`).
AS_OF_EVENTS_LIMIT = 10_000


@dataclass(frozen=True)
class HistoryAsOf:
    """A subject's evaluation on a past date, with the stored events it folded (ascending)."""

    evaluation: Evaluation
    events: list[StoredEvent]
    # True when older events up to the date exist than the ones folded.
    truncated: bool


def _domain_event(stored: StoredEvent) -> Observation | MilestoneReport:
    data = stored.data
    if "value" in data:
        return Observation(
            event_id=stored.event_id,
            value=data["value"],
            as_of=stored.as_of,
            received_at=stored.time,
            arrival=stored.arrival,
        )
    return MilestoneReport(
        event_id=stored.event_id,
        state=ReportedState(data["state"]),
        percent_complete=data.get("percent_complete"),
        expected_completion=(
            date.fromisoformat(data["expected_completion"])
            if data.get("expected_completion")
            else None
        ),
        as_of=stored.as_of,
        received_at=stored.time,
        arrival=stored.arrival,
    )


def _child(status: SubjectStatus) -> ChildStatus:
    return ChildStatus(
        subject_id=status.subject_id,
        subject_kind=status.kind,
        status=status.status,
        ministries=status.ministries,
    )


def _evaluate_as_of(definition: Definition, stored: list[StoredEvent], on: date) -> Evaluation:
    """CPU-bound (up to `as_of_events_limit` events): run off the event loop."""
    events = [_domain_event(e) for e in stored]
    if isinstance(definition, KpiDefinition):
        return evaluate_kpi_as_of(definition, [e for e in events if isinstance(e, Observation)], on)
    return evaluate_milestone_as_of(
        definition, [e for e in events if isinstance(e, MilestoneReport)], on
    )


@dataclass
class KpiQueries:
    states: StateRepository
    events: EventStore
    as_of_events_limit: int = AS_OF_EVENTS_LIMIT
    # What one history read may cost the database server (None: unbounded).
    max_time_ms: int | None = None

    async def evaluation_as_of(self, definition: Definition, on: date) -> Evaluation:
        return (await self.history_as_of(definition, on)).evaluation

    async def history_as_of(self, definition: Definition, on: date) -> HistoryAsOf:
        """The state rebuilt from the latest `as_of_events_limit` stored events with as_of <=
        `on` (exact unless `truncated`), in one read of the history, evaluated in a worker
        thread so a long history does not hold the event loop (and the consumer) meanwhile."""
        stored = await self.events.history(
            definition.id,
            limit=self.as_of_events_limit + 1,
            until=on,
            max_time_ms=self.max_time_ms,
        )
        truncated = len(stored) > self.as_of_events_limit
        stored = stored[-self.as_of_events_limit :]
        evaluation = await asyncio.to_thread(_evaluate_as_of, definition, stored, on)
        return HistoryAsOf(evaluation, stored, truncated)

    async def latest_history(self, subject_id: str, limit: int) -> list[StoredEvent]:
        """The subject's latest `limit` stored events, bounded like `history_as_of`."""
        return await self.events.history(subject_id, limit=limit, max_time_ms=self.max_time_ms)

    async def measure_rollup(self, measure_id: str) -> MeasureRollup:
        states = await self.states.statuses_for_measure(measure_id)
        assessment = await self.events.latest_assessment(measure_id)
        return rollup_measure(measure_id, [_child(s) for s in states], assessment)

    async def scorecard(self, ministry: str) -> Scorecard:
        states = await self.states.statuses_for_ministry(ministry)
        measure_ids = sorted({s.measure_id for s in states})
        assessments = await self.events.latest_assessments(measure_ids)
        by_measure: dict[str, list[ChildStatus]] = {}
        for state in states:
            by_measure.setdefault(state.measure_id, []).append(_child(state))
        rollups = [
            rollup_measure(m, children, assessments.get(m)) for m, children in by_measure.items()
        ]
        cards = ministry_scorecards([_child(s) for s in states], rollups)
        return cards.get(ministry) or Scorecard(
            ministry=ministry, counts=dict.fromkeys(Status, 0), total=0
        )

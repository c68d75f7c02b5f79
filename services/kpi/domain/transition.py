"""The per-subject state transition: a subject's state, its new events and today -> its next state
and the status change it produced.

A subject's state is what the service keeps of a KPI or milestone between evaluations: its
aggregate (the folded events), its episode (domain/episodes.py), its latest evaluation, the
owners and measure it was evaluated under, and how many status changes it has produced (their
sequence numbers make the status events' ids deterministic, so a replay yields the same ids).

Pure: no clock, no storage. The service layer stores what this returns and publishes its
changes.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

from services.kpi.domain.episodes import EpisodeState, StatusChanged, track
from services.kpi.domain.model import (
    Evaluation,
    KpiDefinition,
    MilestoneDefinition,
    MilestoneReport,
    Observation,
    SubjectKind,
)
from services.kpi.domain.rules import evaluate_kpi, evaluate_milestone
from services.kpi.domain.state import KpiState, MilestoneState, apply_observation, apply_report

Definition = KpiDefinition | MilestoneDefinition
SubjectEvent = Observation | MilestoneReport


@dataclass(frozen=True, slots=True)
class SubjectState:
    """A KPI's or milestone's state between evaluations."""

    subject_id: str
    kind: SubjectKind
    measure_id: str
    ministries: tuple[str, ...]
    aggregate: KpiState | MilestoneState
    episode: EpisodeState
    evaluation: Evaluation
    # Status changes produced so far: the last one's sequence number.
    seq: int = 0


@dataclass(frozen=True, slots=True)
class NumberedChange:
    """A status change with its place in the subject's sequence of changes."""

    seq: int
    change: StatusChanged
    measure_id: str
    ministries: tuple[str, ...]

    @property
    def event_id(self) -> str:
        """Deterministic: the same change replayed has the same id (downstream deduplicates)."""
        return status_event_id(self.change.subject_id, self.seq)


@dataclass(frozen=True, slots=True)
class Advance:
    """What a transition produced: the next state (None when nothing changed, so nothing is to
    be stored) and its status change, if any."""

    state: SubjectState | None
    change: NumberedChange | None


def status_event_id(subject_id: str, seq: int) -> str:
    return f"status:{subject_id}:{seq}"


def advance(
    definition: Definition,
    previous: SubjectState | None,
    events: Iterable[SubjectEvent],
    today: date,
) -> Advance:
    """Fold `events` into the subject's state, evaluate it for `today` and track its episode.

    The state is new (to be stored) when the status changed, or the evaluation or aggregate
    differ from the previous state's, or the owners did (an ownership change at run time or a
    catalogue load: the state says who owns it). Idempotent: advancing a state with the events
    it already folded, on the same day, yields no new state.
    """
    episode = previous.episode if previous else EpisodeState.initial(definition.id)
    aggregate: KpiState | MilestoneState
    if isinstance(definition, KpiDefinition):
        kpi_state = (
            previous.aggregate
            if previous and isinstance(previous.aggregate, KpiState)
            else KpiState.for_definition(definition)
        )
        for event in events:
            assert isinstance(event, Observation)
            kpi_state = apply_observation(kpi_state, event)
        evaluation = evaluate_kpi(definition, kpi_state, today)
        aggregate, kind = kpi_state, SubjectKind.KPI
    else:
        milestone_state = (
            previous.aggregate
            if previous and isinstance(previous.aggregate, MilestoneState)
            else MilestoneState.for_definition(definition)
        )
        for event in events:
            assert isinstance(event, MilestoneReport)
            milestone_state = apply_report(milestone_state, event)
        evaluation = evaluate_milestone(definition, milestone_state, today)
        aggregate, kind = milestone_state, SubjectKind.MILESTONE
    transition = track(episode, evaluation)
    ministries = tuple(definition.ministries)
    if (
        previous is not None
        and transition.event is None
        and previous.evaluation == evaluation
        and previous.aggregate == aggregate
        and previous.ministries == ministries
    ):
        return Advance(None, None)
    seq = previous.seq if previous else 0
    change = None
    if transition.event is not None:
        seq += 1
        change = NumberedChange(seq, transition.event, definition.measure_id, ministries)
    state = SubjectState(
        subject_id=definition.id,
        kind=kind,
        measure_id=definition.measure_id,
        ministries=ministries,
        aggregate=aggregate,
        episode=transition.state,
        evaluation=evaluation,
        seq=seq,
    )
    return Advance(state, change)

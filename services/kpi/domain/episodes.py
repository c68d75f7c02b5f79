"""Status transitions and episodes.

A status_changed event is emitted only when the status differs from the previous one (the
first evaluation of a subject counts as a change from None).

An episode is a maximal run of consecutive evaluations in a bad status (BAD_STATUSES:
at_risk, off_track, overdue, stale). Moving between bad statuses (at_risk -> off_track,
off_track -> overdue, ...) stays in the same episode, so the alerts service, which dedups per
(episode, kind), raises one alert per kind per episode: an escalation is a new kind and is
alerted, flapping between two bad statuses is not re-alerted. Entering a bad status from a
good or neutral one (or from nothing) opens a new episode; leaving for a good or neutral
status closes it, and that status_changed carries the closing episode's id so alerts can be
resolved.

Episode ids are derived, never random, so a replay yields the same ids:
"{subject_id}:{date the episode opened}", with "#2", "#3", ... when a second episode opens
on the same day.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Self

from pydantic import BaseModel, ConfigDict

from services.kpi.domain.model import (
    BAD_STATUSES,
    Evaluation,
    Explanation,
    Status,
    SubjectKind,
)


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class EpisodeState(_Frozen):
    """What the service persists per subject between evaluations."""

    subject_id: str
    status: Status | None = None
    since: date | None = None
    # The open episode while the status is bad, else None.
    episode_id: str | None = None
    # The most recent episode, open or closed; makes same-day ids distinct.
    last_episode_id: str | None = None

    @classmethod
    def initial(cls, subject_id: str) -> Self:
        return cls(subject_id=subject_id)


class StatusChanged(_Frozen):
    """Payload of a status_changed event."""

    subject_id: str
    subject_kind: SubjectKind
    previous_status: Status | None
    new_status: Status
    # Open episode when new_status is bad; the closing episode when leaving a bad status.
    episode_id: str | None
    evaluated_on: date
    explanation: Explanation


@dataclass(frozen=True, slots=True)
class Transition:
    state: EpisodeState
    event: StatusChanged | None


def episode_id_for(subject_id: str, opened_on: date, last_episode_id: str | None) -> str:
    base = f"{subject_id}:{opened_on.isoformat()}"
    if last_episode_id is None:
        return base
    if last_episode_id == base:
        return f"{base}#2"
    prefix = f"{base}#"
    if last_episode_id.startswith(prefix) and last_episode_id[len(prefix) :].isdigit():
        return f"{base}#{int(last_episode_id[len(prefix) :]) + 1}"
    return base


def track(previous: EpisodeState, evaluation: Evaluation) -> Transition:
    """Apply a new evaluation: the next persisted state and the event to emit, if any.

    Idempotent: applying the same evaluation again yields the same state and no event.
    """
    new = evaluation.status
    if previous.status == new:
        return Transition(previous, None)
    was_bad = previous.status in BAD_STATUSES
    is_bad = new in BAD_STATUSES
    if is_bad and not was_bad:
        episode = episode_id_for(
            previous.subject_id, evaluation.evaluated_on, previous.last_episode_id
        )
        state = previous.model_copy(update={"episode_id": episode, "last_episode_id": episode})
        carried: str | None = episode
    elif is_bad:
        state, carried = previous, previous.episode_id
    else:
        state = previous.model_copy(update={"episode_id": None})
        carried = previous.episode_id  # the closing episode, None if there was none
    state = state.model_copy(update={"status": new, "since": evaluation.evaluated_on})
    event = StatusChanged(
        subject_id=previous.subject_id,
        subject_kind=evaluation.subject_kind,
        previous_status=previous.status,
        new_status=new,
        episode_id=carried,
        evaluated_on=evaluation.evaluated_on,
        explanation=evaluation.explanation,
    )
    return Transition(state, event)

"""Divergence episodes: when a ministry's self-assessment of a measure and the measure's
computed status (rollup.py) start to diverge, change level, and agree again. Pure.

- An episode **opens** when the divergence becomes minor or major from none or not comparable;
  it gets the next number of the measure (``<measure>:divergence:<n>``).
- While open, a change between minor and major is published under the same episode.
- It **closes** when the two agree again (divergence none), published under its id.
- Not comparable (no self-assessment, or a computed stale / no_data status) neither opens nor
  closes an episode: nothing is known to agree or diverge.

Each published change has the next version of the measure's record: its event id
(``divergence:<measure>:<version>``) is deterministic, so a change published twice (a crash
between publishing and recording) is recognised downstream.
"""

from __future__ import annotations

from datetime import date

from pydantic import BaseModel, ConfigDict

from services.kpi.domain.rollup import MeasureRollup
from shared.events.contracts import (
    DIVERGING_LEVELS,
    DivergenceLevel,
    MeasureDivergenceChanged,
    MeasureRating,
)


class DivergenceRecord(BaseModel):
    """What the kpi service remembers of a measure's divergence."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    measure_id: str
    divergence: DivergenceLevel
    episode_id: str | None  # the open (or last) episode
    episodes: int = 0  # how many have opened
    version: int = 0  # how many changes were published


def episode_id(measure_id: str, number: int) -> str:
    return f"{measure_id}:divergence:{number}"


def event_id(measure_id: str, version: int) -> str:
    return f"divergence:{measure_id}:{version}"


def next_divergence(
    previous: DivergenceRecord | None, rollup: MeasureRollup, today: date
) -> tuple[DivergenceRecord, MeasureDivergenceChanged | None]:
    """The measure's record after `rollup`, and the change to publish (None: nothing to say)."""
    measure_id = rollup.measure_id
    before = previous or DivergenceRecord(
        measure_id=measure_id, divergence=DivergenceLevel.NOT_COMPARABLE, episode_id=None
    )
    now = DivergenceLevel(rollup.divergence.value)
    was_open = before.divergence in DIVERGING_LEVELS
    if now is DivergenceLevel.NOT_COMPARABLE or now == before.divergence:
        return before, None
    if now in DIVERGING_LEVELS:
        if was_open:
            record = before.model_copy(update={"divergence": now, "version": before.version + 1})
        else:
            episodes = before.episodes + 1
            record = before.model_copy(
                update={
                    "divergence": now,
                    "episode_id": episode_id(measure_id, episodes),
                    "episodes": episodes,
                    "version": before.version + 1,
                }
            )
    elif was_open:  # agree again: the episode closes
        record = before.model_copy(update={"divergence": now, "version": before.version + 1})
    else:  # none after not comparable: nothing opened, nothing to close
        return before.model_copy(update={"divergence": now}), None
    assessment = rollup.self_assessment
    assert record.episode_id is not None
    change = MeasureDivergenceChanged(
        measure_id=measure_id,
        ministries=list(rollup.ministries),
        self_assessment=None if assessment is None else MeasureRating(assessment.rating.value),
        assessed_as_of=None if assessment is None else assessment.as_of,
        computed_status=rollup.status,
        previous_divergence=None if previous is None else before.divergence,
        divergence=now,
        episode_id=record.episode_id,
        evaluated_on=today,
    )
    return record, change

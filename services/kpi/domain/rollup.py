"""Rollups: measure status, ministry scorecards, self-assessment divergence.

- A measure's computed status is its worst child (KPIs and milestones) by SEVERITY_ORDER;
  a measure with no children is no_data.
- The ministry's self-assessment (`measure.assessed`) is kept beside the computed status,
  never merged into it. Both are mapped to a level (on_track 0, at_risk 1, off_track 2;
  achieved counts as on_track, overdue as off_track) and the divergence is how far the
  self-assessment is *more optimistic* than the computed status:
    major  self on_track, computed off_track/overdue (the flag of its own)
    minor  one level apart (on_track vs at_risk, at_risk vs off_track/overdue)
    none   equal, or the ministry is more pessimistic than the data
    not_comparable  no self-assessment, or computed stale/no_data/target_pending
- A ministry's scorecard counts, by status, the subjects that list the ministry (a subject
  co-owned by two ministries counts for both), and lists its measures with a major divergence.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum

from pydantic import BaseModel, ConfigDict

from services.kpi.domain.model import (
    AssessmentRating,
    SelfAssessment,
    Status,
    SubjectKind,
    severity,
    worst,
)


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Divergence(StrEnum):
    NONE = "none"
    MINOR = "minor"
    MAJOR = "major"
    NOT_COMPARABLE = "not_comparable"


_COMPUTED_LEVEL: dict[Status, int] = {
    Status.ACHIEVED: 0,
    Status.ON_TRACK: 0,
    Status.AT_RISK: 1,
    Status.OFF_TRACK: 2,
    Status.OVERDUE: 2,
}
_RATING_LEVEL: dict[AssessmentRating, int] = {
    AssessmentRating.ON_TRACK: 0,
    AssessmentRating.AT_RISK: 1,
    AssessmentRating.OFF_TRACK: 2,
}


def divergence(rating: AssessmentRating | None, computed: Status) -> Divergence:
    computed_level = _COMPUTED_LEVEL.get(computed)
    if rating is None or computed_level is None:
        return Divergence.NOT_COMPARABLE
    gap = computed_level - _RATING_LEVEL[rating]
    if gap >= 2:
        return Divergence.MAJOR
    if gap == 1:
        return Divergence.MINOR
    return Divergence.NONE


class ChildStatus(_Frozen):
    subject_id: str
    subject_kind: SubjectKind
    status: Status
    ministries: tuple[str, ...] = ()


class MeasureRollup(_Frozen):
    measure_id: str
    status: Status
    # All children, worst first (ties by id), and the ids of those that set the status.
    children: tuple[ChildStatus, ...]
    worst_children: tuple[str, ...]
    ministries: tuple[str, ...]
    self_assessment: SelfAssessment | None
    divergence: Divergence

    @property
    def divergence_flag(self) -> bool:
        return self.divergence is Divergence.MAJOR


def rollup_measure(
    measure_id: str,
    children: Iterable[ChildStatus],
    self_assessment: SelfAssessment | None = None,
) -> MeasureRollup:
    ordered = tuple(sorted(children, key=lambda c: (-severity(c.status), c.subject_id)))
    status = worst(c.status for c in ordered) or Status.NO_DATA
    ministries = tuple(sorted({m for c in ordered for m in c.ministries}))
    return MeasureRollup(
        measure_id=measure_id,
        status=status,
        children=ordered,
        worst_children=tuple(c.subject_id for c in ordered if c.status is status),
        ministries=ministries,
        self_assessment=self_assessment,
        divergence=divergence(None if self_assessment is None else self_assessment.rating, status),
    )


class Scorecard(_Frozen):
    ministry: str
    counts: dict[Status, int]
    total: int
    divergent_measures: tuple[str, ...] = ()


def ministry_scorecards(
    children: Iterable[ChildStatus], measures: Iterable[MeasureRollup] = ()
) -> dict[str, Scorecard]:
    """One scorecard per ministry named by a child or a measure; every status is a key."""
    counts: dict[str, dict[Status, int]] = {}
    for child in children:
        for ministry in dict.fromkeys(child.ministries):
            row = counts.setdefault(ministry, dict.fromkeys(Status, 0))
            row[child.status] += 1
    divergent: dict[str, list[str]] = {}
    for measure in measures:
        for ministry in measure.ministries:
            counts.setdefault(ministry, dict.fromkeys(Status, 0))
            if measure.divergence_flag:
                divergent.setdefault(ministry, []).append(measure.measure_id)
    return {
        ministry: Scorecard(
            ministry=ministry,
            counts=row,
            total=sum(row.values()),
            divergent_measures=tuple(sorted(divergent.get(ministry, []))),
        )
        for ministry, row in sorted(counts.items())
    }

"""Measure rollups, ministry scorecards and self-assessment divergence."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from services.kpi.domain.model import (
    SEVERITY_ORDER,
    AssessmentRating,
    SelfAssessment,
    Status,
    SubjectKind,
    latest_assessment,
    severity,
    worst,
)
from services.kpi.domain.rollup import (
    ChildStatus,
    Divergence,
    divergence,
    ministry_scorecards,
    rollup_measure,
)

T = datetime(2024, 1, 1, tzinfo=UTC)


def child(sid: str, status: Status, *ministries: str) -> ChildStatus:
    return ChildStatus(
        subject_id=sid, subject_kind=SubjectKind.KPI, status=status, ministries=ministries
    )


def assessed(
    rating: AssessmentRating, as_of: date = date(2024, 1, 1), eid: str = "a1"
) -> SelfAssessment:
    return SelfAssessment(event_id=eid, measure_id="m1", rating=rating, as_of=as_of, received_at=T)


def test_severity_order_is_documented_order() -> None:
    """Severity decreases along SEVERITY_ORDER and covers every status once."""
    assert set(SEVERITY_ORDER) == set(Status)
    assert [severity(s) for s in SEVERITY_ORDER] == sorted(
        (severity(s) for s in Status), reverse=True
    )
    assert worst([]) is None


def test_measure_takes_worst_child() -> None:
    """A measure's status is its worst child's; the deciding children are listed."""
    rollup = rollup_measure(
        "m1",
        [
            child("k1", Status.ON_TRACK),
            child("k2", Status.STALE),
            child("k3", Status.AT_RISK),
            child("k4", Status.STALE),
        ],
    )
    assert rollup.status is Status.STALE
    assert rollup.worst_children == ("k2", "k4")
    assert [c.subject_id for c in rollup.children] == ["k2", "k4", "k3", "k1"]


def test_measure_without_children_has_no_data() -> None:
    """An empty measure rolls up to no_data."""
    assert rollup_measure("m1", []).status is Status.NO_DATA


@pytest.mark.parametrize(
    ("rating", "computed", "expected"),
    [
        (AssessmentRating.ON_TRACK, Status.OFF_TRACK, Divergence.MAJOR),
        (AssessmentRating.ON_TRACK, Status.OVERDUE, Divergence.MAJOR),
        (AssessmentRating.ON_TRACK, Status.AT_RISK, Divergence.MINOR),
        (AssessmentRating.AT_RISK, Status.OFF_TRACK, Divergence.MINOR),
        (AssessmentRating.ON_TRACK, Status.ACHIEVED, Divergence.NONE),
        (AssessmentRating.OFF_TRACK, Status.ON_TRACK, Divergence.NONE),
        (AssessmentRating.ON_TRACK, Status.STALE, Divergence.NOT_COMPARABLE),
        (None, Status.OFF_TRACK, Divergence.NOT_COMPARABLE),
    ],
)
def test_divergence_levels(
    rating: AssessmentRating | None, computed: Status, expected: Divergence
) -> None:
    """Divergence measures how much more optimistic the self-assessment is than the data."""
    assert divergence(rating, computed) is expected


def test_self_assessment_kept_beside_computed_status() -> None:
    """The self-assessment does not change the computed status; a major gap is flagged."""
    rollup = rollup_measure(
        "m1", [child("k1", Status.OFF_TRACK, "mic")], assessed(AssessmentRating.ON_TRACK)
    )
    assert rollup.status is Status.OFF_TRACK
    assert rollup.self_assessment is not None
    assert rollup.self_assessment.rating is AssessmentRating.ON_TRACK
    assert rollup.divergence_flag


def test_latest_assessment_is_order_independent() -> None:
    """The kept self-assessment is the latest by as_of whatever the arrival order."""
    old = assessed(AssessmentRating.OFF_TRACK, date(2023, 1, 1), "old")
    new = assessed(AssessmentRating.ON_TRACK, date(2024, 1, 1), "new")
    assert latest_assessment(latest_assessment(None, old), new) == new
    assert latest_assessment(latest_assessment(None, new), old) == new


def test_ministry_scorecards_count_by_status() -> None:
    """Each ministry counts its subjects by status (co-owned ones for both) and lists flags."""
    children = [
        child("k1", Status.ON_TRACK, "digital"),
        child("k2", Status.OFF_TRACK, "digital", "mic"),
        child("k3", Status.OFF_TRACK, "mic", "mic"),
    ]
    flagged = rollup_measure("m1", children[1:], assessed(AssessmentRating.ON_TRACK))
    cards = ministry_scorecards(children, [flagged])
    assert list(cards) == ["digital", "mic"]
    assert cards["digital"].counts[Status.ON_TRACK] == 1
    assert cards["digital"].counts[Status.OFF_TRACK] == 1
    assert cards["digital"].total == 2
    assert cards["mic"].counts[Status.OFF_TRACK] == 2
    assert set(cards["mic"].counts) == set(Status)
    assert cards["mic"].divergent_measures == ("m1",)
    assert cards["digital"].divergent_measures == ("m1",)

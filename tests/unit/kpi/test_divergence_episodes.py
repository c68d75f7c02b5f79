"""Divergence episodes: opened when a measure's self-assessment and computed status diverge,
continued across a level change, closed when they agree; not comparable neither opens nor
closes; every published change has a fresh version (its deterministic event id)."""

from __future__ import annotations

from datetime import UTC, date, datetime

from hypothesis import given
from hypothesis import strategies as st

from services.kpi.domain.divergence import DivergenceRecord, event_id, next_divergence
from services.kpi.domain.model import AssessmentRating, SelfAssessment, Status, SubjectKind
from services.kpi.domain.rollup import ChildStatus, MeasureRollup, rollup_measure
from shared.events.contracts import DivergenceLevel

TODAY = date(2026, 4, 1)
T = datetime(2026, 4, 1, tzinfo=UTC)


def rollup(status: Status, rating: AssessmentRating | None) -> MeasureRollup:
    assessment = (
        None
        if rating is None
        else SelfAssessment(
            event_id="a", measure_id="m1", rating=rating, as_of=date(2026, 3, 31), received_at=T
        )
    )
    child = ChildStatus(
        subject_id="k1", subject_kind=SubjectKind.KPI, status=status, ministries=("mic",)
    )
    return rollup_measure("m1", [child], assessment)


def test_an_episode_opens_changes_level_and_closes_under_one_id() -> None:
    record, opened = next_divergence(None, rollup(Status.AT_RISK, AssessmentRating.ON_TRACK), TODAY)
    assert opened is not None
    assert opened.opens
    assert (opened.divergence, opened.previous_divergence) == (DivergenceLevel.MINOR, None)
    assert opened.episode_id == "m1:divergence:1"
    assert opened.self_assessment is not None
    assert opened.self_assessment.value == "on_track"
    assert opened.computed_status is Status.AT_RISK
    assert opened.ministries == ["mic"]

    record, worse = next_divergence(
        record, rollup(Status.OFF_TRACK, AssessmentRating.ON_TRACK), TODAY
    )
    assert worse is not None
    assert not worse.opens
    assert (worse.divergence, worse.episode_id) == (DivergenceLevel.MAJOR, "m1:divergence:1")

    record, closed = next_divergence(
        record, rollup(Status.OFF_TRACK, AssessmentRating.OFF_TRACK), TODAY
    )
    assert closed is not None
    assert (closed.divergence, closed.previous_divergence) == (
        DivergenceLevel.NONE,
        DivergenceLevel.MAJOR,
    )
    assert closed.episode_id == "m1:divergence:1"
    assert record.version == 3

    record, reopened = next_divergence(
        record, rollup(Status.OFF_TRACK, AssessmentRating.ON_TRACK), TODAY
    )
    assert reopened is not None
    assert reopened.opens
    assert reopened.episode_id == "m1:divergence:2"
    assert event_id("m1", record.version) == "divergence:m1:4"


def test_agreement_or_no_comparison_publishes_nothing() -> None:
    record, change = next_divergence(
        None, rollup(Status.ON_TRACK, AssessmentRating.ON_TRACK), TODAY
    )
    assert change is None
    assert record.divergence is DivergenceLevel.NONE
    record, change = next_divergence(record, rollup(Status.STALE, AssessmentRating.ON_TRACK), TODAY)
    assert change is None
    assert record.divergence is DivergenceLevel.NONE
    _, change = next_divergence(None, rollup(Status.OFF_TRACK, None), TODAY)
    assert change is None


def test_not_comparable_keeps_an_open_episode_open() -> None:
    record, _ = next_divergence(None, rollup(Status.OFF_TRACK, AssessmentRating.ON_TRACK), TODAY)
    still, change = next_divergence(record, rollup(Status.STALE, AssessmentRating.ON_TRACK), TODAY)
    assert change is None
    assert still == record


STATUSES = st.sampled_from(list(Status))
RATINGS = st.one_of(st.none(), st.sampled_from(list(AssessmentRating)))


@given(steps=st.lists(st.tuples(STATUSES, RATINGS), max_size=12))
def test_published_changes_alternate_open_and_close_with_fresh_versions(
    steps: list[tuple[Status, AssessmentRating | None]],
) -> None:
    """Whatever happens, every published change has the next version, an episode's changes
    share its id, and opens and closes alternate (a close always follows an open)."""
    record: DivergenceRecord | None = None
    versions: list[int] = []
    open_episode: str | None = None
    for status, rating in steps:
        record, change = next_divergence(record, rollup(status, rating), TODAY)
        if change is None:
            continue
        versions.append(record.version)
        if change.opens:
            assert open_episode is None
            open_episode = change.episode_id
        else:
            assert change.episode_id == open_episode
            if change.divergence is DivergenceLevel.NONE:
                open_episode = None
    assert versions == list(range(1, len(versions) + 1))

"""Status as of a past date."""

from __future__ import annotations

from datetime import UTC, date, datetime

from services.kpi.domain.history import evaluate_kpi_as_of, evaluate_milestone_as_of
from services.kpi.domain.model import ReportedState, Status
from services.kpi.domain.rules import evaluate_kpi
from tests.unit.kpi.factories import STAGE_1, days, kpi, milestone, obs, report, state_of

EARLY = datetime(2023, 4, 10, tzinfo=UTC)
LATE = datetime(2023, 6, 1, tzinfo=UTC)
OBSERVATIONS = [
    obs(20, date(2022, 3, 31), "a", received_at=EARLY),
    obs(37, STAGE_1, "b", received_at=EARLY),
    obs(48, STAGE_1, "b-corrected", received_at=LATE),
    obs(60, date(2023, 9, 30), "c", received_at=LATE),
]


def test_as_of_ignores_later_observations() -> None:
    """On a past date only observations with as_of up to that date count."""
    past = evaluate_kpi_as_of(kpi(), OBSERVATIONS, date(2022, 4, 15))
    assert (past.latest_value, past.evaluated_on) == (20, date(2022, 4, 15))
    now = evaluate_kpi_as_of(kpi(), OBSERVATIONS, date(2023, 10, 1))
    assert now.latest_value == 60


def test_as_of_matches_incremental_evaluation() -> None:
    """Rebuilding from all events equals the incrementally maintained state's evaluation."""
    on = date(2023, 10, 1)
    assert evaluate_kpi_as_of(kpi(), OBSERVATIONS, on) == evaluate_kpi(
        kpi(), state_of(kpi(), OBSERVATIONS), on
    )


def test_known_by_reproduces_what_was_said_then() -> None:
    """With known_by, a later correction is not visible to the past evaluation."""
    on = STAGE_1 + days(15)
    as_known = evaluate_kpi_as_of(kpi(), OBSERVATIONS, on, known_by=EARLY)
    as_corrected = evaluate_kpi_as_of(kpi(), OBSERVATIONS, on)
    assert (as_known.status, as_known.latest_value) == (Status.OFF_TRACK, 37)
    assert (as_corrected.status, as_corrected.latest_value) == (Status.ON_TRACK, 48)


def test_milestone_as_of() -> None:
    """A milestone done later was still in progress earlier, or before the report arrived."""
    reports = [
        report(ReportedState.IN_PROGRESS, date(2023, 12, 31), 50, received_at=_at(2024, 1, 2)),
        report(ReportedState.DONE, date(2024, 1, 15), 100, received_at=_at(2024, 1, 16)),
    ]
    on = date(2024, 1, 20)
    assert (
        evaluate_milestone_as_of(milestone(), reports, date(2024, 1, 1)).status is Status.ON_TRACK
    )
    assert evaluate_milestone_as_of(milestone(), reports, on).status is Status.ACHIEVED
    before_report = evaluate_milestone_as_of(milestone(), reports, on, known_by=_at(2024, 1, 10))
    assert before_report.status is Status.ON_TRACK


def _at(year: int, month: int, day: int) -> datetime:
    return datetime(year, month, day, tzinfo=UTC)

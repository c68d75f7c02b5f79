"""The demo scenario fed through the real status engine (services.kpi.domain): each subject ends
in the status the scenario intends, by the path it intends."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import pytest
from pydantic import BaseModel

from demo.scenario import Course, Report, Scenario, build_scenario
from services.kpi.adapters.definitions import Definition, definition_from_catalogue
from services.kpi.domain.model import (
    BAD_STATUSES,
    KpiDefinition,
    MilestoneReport,
    Observation,
    ReportedState,
    Status,
)
from services.kpi.domain.rules import evaluate_kpi, evaluate_milestone
from services.kpi.domain.state import KpiState, MilestoneState, apply_observation, apply_report
from shared.catalogue.loader import CatalogueDocuments, catalogue_documents, validated_catalogue
from shared.events.contracts import (
    KpiObserved,
    MeasureAssessed,
    MilestoneReported,
    ministry_event_adapter,
)
from shared.events.validation import check_event, facts_from_catalogue, owners_from_catalogue

# Every CHECK_DAYS days, and on every report's day, each subject is evaluated.
CHECK_DAYS = 7
# A year ending on a fixed day (the silent ministry shows), and two years in the plan's busiest
# period (most deadlines pass inside the window).
WINDOWS = [(date(2025, 11, 26), 365), (date(2025, 3, 31), 730)]


@pytest.fixture(scope="module")
def catalogue() -> tuple[CatalogueDocuments, date, str]:
    loaded = validated_catalogue(check_sources=False)
    return catalogue_documents(loaded), loaded.plan.decided_on, loaded.default_owner


@dataclass
class Replay:
    scenario: Scenario
    # Per subject: (day, status) whenever the status changed, evaluated as the kpi service would
    # on the simulated date (the reports sent up to that day).
    paths: dict[str, list[tuple[date, Status]]]

    def final(self, subject_id: str) -> Status:
        return self.paths[subject_id][-1][1]

    def status_on(self, subject_id: str, day: date) -> Status | None:
        status = None
        for changed_on, new in self.paths[subject_id]:
            if changed_on > day:
                break
            status = new
        return status


def _domain(report: Report, sequence: int) -> Observation | MilestoneReport:
    received = datetime.combine(report.send_on, datetime.min.time(), UTC)
    received += timedelta(seconds=sequence)
    data = report.data
    if report.kind == "kpi":
        return Observation(
            event_id=f"e{sequence}", value=data["value"], as_of=report.as_of, received_at=received
        )
    expected = data["expected_completion"]
    return MilestoneReport(
        event_id=f"e{sequence}",
        state=ReportedState(data["state"]),
        percent_complete=data["percent_complete"],
        expected_completion=None if expected is None else date.fromisoformat(expected),
        as_of=report.as_of,
        received_at=received,
    )


def replay(scenario: Scenario, definitions: dict[str, Definition]) -> Replay:
    paths: dict[str, list[tuple[date, Status]]] = {}
    for subject_id, plan in scenario.subjects.items():
        defn = definitions[subject_id]
        by_day: dict[date, list[Report]] = {}
        for report in plan.reports:
            by_day.setdefault(report.send_on, []).append(report)
        checked = {scenario.start + timedelta(days=d) for d in range(0, 10_000, CHECK_DAYS)}
        days = sorted({d for d in checked if d <= scenario.end} | set(by_day) | {scenario.end})
        state: KpiState | MilestoneState = (
            KpiState.for_definition(defn)
            if isinstance(defn, KpiDefinition)
            else MilestoneState.for_definition(defn)
        )
        path: list[tuple[date, Status]] = []
        sequence = 0
        for day in days:
            for report in by_day.get(day, []):
                sequence += 1
                item = _domain(report, sequence)
                if isinstance(state, KpiState):
                    assert isinstance(item, Observation)
                    state = apply_observation(state, item)
                else:
                    assert isinstance(item, MilestoneReport)
                    state = apply_report(state, item)
            if isinstance(defn, KpiDefinition):
                assert isinstance(state, KpiState)
                status = evaluate_kpi(defn, state, day).status
            else:
                assert isinstance(state, MilestoneState)
                status = evaluate_milestone(defn, state, day).status
            if not path or path[-1][1] != status:
                path.append((day, status))
        paths[subject_id] = path
    return Replay(scenario, paths)


@pytest.fixture(scope="module", params=WINDOWS, ids=lambda w: f"{w[1]}d-to-{w[0]}")
def replayed(
    request: pytest.FixtureRequest, catalogue: tuple[CatalogueDocuments, date, str]
) -> Replay:
    documents, plan_start, default_owner = catalogue
    end, days = request.param
    scenario = build_scenario(
        documents.items,
        documents.measures,
        start=end - timedelta(days=days),
        end=end,
        plan_start=plan_start,
        default_owner=default_owner,
    )
    definitions = {doc["_id"]: definition_from_catalogue(doc) for doc in documents.items}
    return replay(scenario, definitions)


def test_every_subject_ends_in_the_status_the_scenario_intends(replayed: Replay) -> None:
    """On the last day, the engine's status of every KPI and milestone is the intended one."""
    wrong = {
        subject_id: (plan.expected.value, replayed.final(subject_id).value)
        for subject_id, plan in replayed.scenario.subjects.items()
        if replayed.final(subject_id) != plan.expected
    }
    assert wrong == {}


def test_subjects_on_course_never_raise_an_alarm(replayed: Replay) -> None:
    """An on-course KPI or milestone is never at risk, off track, overdue or stale on any day."""
    alarms = {
        plan.id: replayed.paths[plan.id]
        for plan in replayed.scenario.with_course(Course.ON_COURSE)
        if any(status in BAD_STATUSES for _, status in replayed.paths[plan.id])
    }
    assert alarms == {}


def test_slipping_subjects_are_good_until_they_slip_and_bad_after(replayed: Replay) -> None:
    """A slipping subject that reported before its slip was fine then, and is in a bad status
    from some day after the slip to the end, without recovering."""
    for plan in replayed.scenario.with_course(Course.SLIPPING):
        assert plan.slips_on is not None
        before = replayed.status_on(plan.id, plan.slips_on - timedelta(days=1))
        assert before not in BAD_STATUSES, (plan.id, replayed.paths[plan.id])
        went_bad = [d for d, s in replayed.paths[plan.id] if s in BAD_STATUSES]
        assert went_bad, (plan.id, replayed.paths[plan.id])
        assert all(s in BAD_STATUSES for d, s in replayed.paths[plan.id] if d >= went_bad[0])
        assert plan.expected in BAD_STATUSES


def test_the_silent_ministrys_open_work_goes_stale_once_it_stops_reporting(
    replayed: Replay,
) -> None:
    """With a window long enough, one ministry other than the default owner stops reporting;
    nothing it reports is dated after its silence, and what it had not achieved ends stale or
    overdue."""
    scenario = replayed.scenario
    if scenario.end - scenario.start < timedelta(days=365):
        pytest.fail("the windows tested are all long enough for a silence")
    assert scenario.silent_ministry not in (None, "digital")
    assert scenario.silent_from is not None
    silent = scenario.with_course(Course.SILENT)
    assert silent
    for report in scenario.timeline:
        if report.ministry == scenario.silent_ministry:
            assert report.as_of <= scenario.silent_from
    for plan in silent:
        final = replayed.final(plan.id)
        assert final in (Status.ACHIEVED, Status.STALE, Status.OVERDUE), (plan.id, final)
    assert any(replayed.final(plan.id) is Status.STALE for plan in silent)


def test_most_subjects_report_on_course_and_some_slip(replayed: Replay) -> None:
    """Four in five or more are on course; at least one KPI and one milestone slip."""
    scenario = replayed.scenario
    on_course = scenario.with_course(Course.ON_COURSE)
    slipping = scenario.with_course(Course.SLIPPING)
    assert len(on_course) >= 0.8 * len(scenario.subjects)
    assert {plan.kind for plan in slipping} == {"kpi", "milestone"}


def test_every_report_is_a_valid_event_from_a_responsible_ministry(replayed: Replay) -> None:
    """Each report's data satisfies its event contract, is dated no later than it is sent, and
    comes from a ministry the catalogue lists for the subject."""
    scenario = replayed.scenario
    contracts: dict[str, type[BaseModel]] = {
        "kpi": KpiObserved,
        "milestone": MilestoneReported,
        "measure": MeasureAssessed,
    }
    for report in scenario.timeline:
        contracts[report.kind].model_validate(report.data)
        assert report.as_of <= report.send_on <= scenario.end
        assert scenario.start <= report.send_on
        if report.kind != "measure":
            assert report.ministry in scenario.subjects[report.subject_id].ministries


def test_due_hands_out_each_report_once_in_sending_order(replayed: Replay) -> None:
    """Asking for the reports due tick by tick yields the whole timeline, in order, once."""
    scenario = replayed.scenario
    handed: list[Report] = []
    after: date | None = None
    day = scenario.start
    while day <= scenario.end:
        handed += scenario.due(after, day)
        after, day = day, day + timedelta(days=3)
    handed += scenario.due(after, scenario.end)
    assert handed == list(scenario.timeline)


def test_the_scenario_is_the_same_on_every_run(
    catalogue: tuple[CatalogueDocuments, date, str],
) -> None:
    """Built twice from the same inputs, the scenario is identical (choices are seeded)."""
    documents, plan_start, owner = catalogue

    def build() -> Scenario:
        return build_scenario(
            documents.items,
            documents.measures,
            start=date(2025, 1, 1),
            end=date(2025, 12, 31),
            plan_start=plan_start,
            default_owner=owner,
        )

    first, second = build(), build()
    assert first.timeline == second.timeline
    assert first.expected == second.expected


def test_every_report_passes_the_validation_ingest_and_kpi_make(
    replayed: Replay, catalogue: tuple[CatalogueDocuments, date, str]
) -> None:
    """The feed's reports (counts as whole numbers, dates in their era) pass the shared
    validation (shared.events.validation) as of the day they are sent."""
    documents, _, _ = catalogue
    items = {doc["_id"]: doc for doc in documents.items}
    measures = {doc["_id"]: doc for doc in documents.measures}
    refused = []
    for index, report in enumerate(replayed.scenario.timeline):
        event = ministry_event_adapter.validate_python(
            {
                "specversion": "1.0",
                "id": f"r{index}",
                "source": f"/ministries/{report.ministry}",
                "type": report.event_type,
                "data": dict(report.data),
            }
        )
        is_measure = isinstance(event.data, MeasureAssessed)
        document = (measures if is_measure else items)[report.subject_id]
        facts = facts_from_catalogue(document, "measure" if is_measure else "item")
        now = datetime.combine(report.send_on, datetime.min.time(), UTC)
        found = check_event(event, item=facts, owners=owners_from_catalogue(document), now=now)
        if found:
            refused.append((report.subject_id, report.data, found))
    assert refused == []

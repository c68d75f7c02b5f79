"""Loaded catalogue documents → the engine's definitions, checked on the real catalogue."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest

from services.kpi.adapters.definitions import definition_from_catalogue
from services.kpi.domain.model import (
    Accumulation,
    Comparator,
    Direction,
    KpiDefinition,
    MilestoneDefinition,
    MilestoneKind,
    Observation,
    ReportedState,
    Status,
)
from services.kpi.domain.rules import evaluate_kpi, evaluate_milestone
from services.kpi.domain.state import KpiState, MilestoneState, apply_observation
from services.kpi.domain.trajectory import ResolvedTarget, resolve_targets
from shared.catalogue import Catalogue, load_catalogue
from shared.catalogue.loader import catalogue_documents
from tests.unit.kpi.factories import mstate_of, report

TODAY = date(2024, 6, 30)
RECEIVED = datetime(2024, 1, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def catalogue() -> Catalogue:
    return load_catalogue()


@pytest.fixture(scope="module")
def docs(catalogue: Catalogue) -> dict[str, dict[str, Any]]:
    """The documents exactly as the loader writes them to catalogue_items."""
    return {doc["_id"]: doc for doc in catalogue_documents(catalogue).items}


def kpi_def(docs: dict[str, dict[str, Any]], item_id: str) -> KpiDefinition:
    definition = definition_from_catalogue(docs[item_id])
    assert isinstance(definition, KpiDefinition)
    return definition


def test_every_catalogue_entry_maps_and_evaluates(
    catalogue: Catalogue, docs: dict[str, dict[str, Any]]
) -> None:
    """Every KPI and milestone of the real catalogue maps to a definition of its kind that the
    engine evaluates without error, with the catalogue's ids, measure and ministries."""
    assert len(docs) == len(catalogue.kpis) + len(catalogue.milestones)
    for item_id, doc in docs.items():
        definition = definition_from_catalogue(doc)
        assert definition.id == item_id
        assert definition.measure_id == doc["measure_id"]
        assert list(definition.ministries) == doc["ministries"]
        if doc["kind"] == "kpi":
            assert isinstance(definition, KpiDefinition)
            evaluation = evaluate_kpi(definition, KpiState.for_definition(definition), TODAY)
            assert evaluation.status in {Status.NO_DATA, Status.TARGET_PENDING}
        else:
            assert isinstance(definition, MilestoneDefinition)
            evaluation = evaluate_milestone(
                definition, MilestoneState.for_definition(definition), TODAY
            )
            assert evaluation.status is Status.NO_DATA


def test_every_kpi_keeps_a_target_and_every_milestone_its_deadline(catalogue: Catalogue) -> None:
    """No catalogue KPI loses all its targets in the mapping, and every milestone keeps its
    kind and deadline."""
    docs = {doc["_id"]: doc for doc in catalogue_documents(catalogue).items}
    for k in catalogue.kpis:
        definition = definition_from_catalogue(docs[k.id])
        assert isinstance(definition, KpiDefinition)
        assert definition.targets, k.id
        assert definition.accumulation.value == k.accumulation.value
        assert definition.direction.value == k.direction.value
    for ms in catalogue.milestones:
        milestone = definition_from_catalogue(docs[ms.id])
        assert isinstance(milestone, MilestoneDefinition)
        assert milestone.deadline == ms.deadline
        assert milestone.kind.value == ms.kind.value


def test_thresholds_come_from_catalogue_defaults(
    catalogue: Catalogue, docs: dict[str, dict[str, Any]]
) -> None:
    """Reporting cadence, stale grace and at-risk tolerance are the catalogue's defaults."""
    defaults = catalogue.defaults
    kpi = kpi_def(docs, "kpi.5g-base-stations")
    assert kpi.thresholds.reporting_cadence_days == defaults.reporting_cadence_days
    assert kpi.thresholds.stale_grace_days == defaults.stale_grace_days
    assert kpi.thresholds.at_risk_tolerance == defaults.at_risk_tolerance
    milestone = definition_from_catalogue(docs[catalogue.milestones[0].id])
    assert milestone.thresholds.reporting_cadence_days == defaults.reporting_cadence_days


def test_5g_coverage_has_three_staged_targets_in_the_increase_direction(
    docs: dict[str, dict[str, Any]],
) -> None:
    """5G population coverage: baseline 30% (FY2020 end), then 95% / 97% / 99% by the ends of
    FY2023 / FY2025 / FY2030, each met at or above the figure."""
    kpi = kpi_def(docs, "kpi.5g-population-coverage")
    assert kpi.baseline is not None
    assert (kpi.baseline.value, kpi.baseline.as_of) == (30.0, date(2021, 3, 31))
    assert [(t.value, t.deadline) for t in kpi.targets] == [
        (95.0, date(2024, 3, 31)),
        (97.0, date(2026, 3, 31)),
        (99.0, date(2031, 3, 31)),
    ]
    assert {kpi.comparator(t) for t in kpi.targets} == {Comparator.AT_LEAST}
    assert {t.tolerance for t in kpi.targets} == {0.0}
    state = apply_observation(
        KpiState.for_definition(kpi),
        Observation(event_id="e1", value=99.4, as_of=date(2031, 3, 1), received_at=RECEIVED),
    )
    assert evaluate_kpi(kpi, state, date(2031, 3, 2)).status is Status.ACHIEVED


def test_cumulative_base_stations_keep_accumulation(docs: dict[str, dict[str, Any]]) -> None:
    """Base stations are a running total: 28万 / 30万 / 60万, cumulative."""
    kpi = kpi_def(docs, "kpi.5g-base-stations")
    assert kpi.accumulation is Accumulation.CUMULATIVE
    assert [t.value for t in kpi.targets] == [280_000.0, 300_000.0, 600_000.0]


def test_relative_30_percent_cut_resolves_against_the_fy2020_baseline(
    docs: dict[str, dict[str, Any]],
) -> None:
    """Government IT operating cost: 30% below FY2020 (baseline 5,400億円) by FY2025, i.e. at
    most 3,780; a report of 3,700 in FY2025 achieves it."""
    kpi = kpi_def(docs, "kpi.gov-it-operating-cost")
    assert kpi.direction is Direction.DECREASE
    (target,) = kpi.targets
    assert target.relative is not None
    assert (target.relative.base_fiscal_year, target.relative.change_ratio) == (2020, -0.3)
    assert kpi.comparator(target) is Comparator.AT_MOST
    resolved = resolve_targets(kpi, {})
    assert isinstance(resolved, tuple)
    (only,) = resolved[0]
    assert isinstance(only, ResolvedTarget)
    assert only.value == pytest.approx(3780.0)
    state = apply_observation(
        KpiState.for_definition(kpi),
        Observation(event_id="e1", value=3700.0, as_of=date(2026, 3, 31), received_at=RECEIVED),
    )
    assert evaluate_kpi(kpi, state, date(2026, 4, 1)).status is Status.ACHIEVED


def test_at_least_a_30_percent_cut_is_a_ceiling_pending_its_fy2018_base(
    docs: dict[str, dict[str, Any]],
) -> None:
    """Local-government IT cost: "at least 30% less than FY2018" becomes an at-most target
    relative to FY2018, pending until a FY2018 value is known (the plan states none)."""
    kpi = kpi_def(docs, "kpi.local-gov-it-operating-cost")
    (target,) = kpi.targets
    assert kpi.comparator(target) is Comparator.AT_MOST
    assert kpi.anchor_fiscal_years == frozenset({2018})
    state = apply_observation(
        KpiState.for_definition(kpi),
        Observation(event_id="e1", value=900.0, as_of=date(2023, 3, 31), received_at=RECEIVED),
    )
    assert evaluate_kpi(kpi, state, TODAY).status is Status.TARGET_PENDING


def test_about_targets_get_the_default_approximate_tolerance(
    catalogue: Catalogue, docs: dict[str, dict[str, Any]]
) -> None:
    """ほぼ全国民 (about 100%) is met from 95% up; 約５割 from 47.5% up, and beating it counts."""
    tolerance = catalogue.defaults.approximate_tolerance
    card = kpi_def(docs, "kpi.mynumber-card-coverage")
    (target,) = card.targets
    assert target.tolerance == pytest.approx(tolerance * 100.0)
    assert card.comparator(target) is Comparator.AT_LEAST
    sme = kpi_def(docs, "kpi.sme-e-ordering-adoption")
    state = apply_observation(
        KpiState.for_definition(sme),
        Observation(event_id="e1", value=60.0, as_of=date(2023, 12, 1), received_at=RECEIVED),
    )
    assert evaluate_kpi(sme, state, date(2024, 1, 15)).status is Status.ACHIEVED


def test_per_region_only_kpi_is_evaluated_against_its_regional_floors(
    docs: dict[str, dict[str, Any]],
) -> None:
    """The per-prefecture 5G KPI (no national target) keeps its floors 90% and 99%."""
    kpi = kpi_def(docs, "kpi.5g-population-coverage-per-prefecture")
    assert [(t.value, t.deadline) for t in kpi.targets] == [
        (90.0, date(2026, 3, 31)),
        (99.0, date(2031, 3, 31)),
    ]


def test_national_targets_win_over_per_region_ones(docs: dict[str, dict[str, Any]]) -> None:
    """A KPI stating both national and per-region targets is evaluated on the national ones."""
    doc = dict(docs["kpi.5g-population-coverage"])
    regional = {**doc["targets"][0], "value": 80.0, "scope": "per_region"}
    doc["targets"] = [*doc["targets"], {**regional, "deadline": "2035-03-31"}]
    kpi = definition_from_catalogue(doc)
    assert isinstance(kpi, KpiDefinition)
    assert [t.value for t in kpi.targets] == [95.0, 97.0, 99.0]


def test_start_milestone_is_met_by_starting(
    catalogue: Catalogue, docs: dict[str, dict[str, Any]]
) -> None:
    """A start-kind milestone maps to kind start with its deadline, and an in-progress report
    before the deadline achieves it."""
    start = next(ms for ms in catalogue.milestones if ms.kind.value == "start")
    milestone = definition_from_catalogue(docs[start.id])
    assert isinstance(milestone, MilestoneDefinition)
    assert milestone.kind is MilestoneKind.START
    assert milestone.deadline == start.deadline
    started = mstate_of(milestone, [report(ReportedState.IN_PROGRESS, start.deadline)])
    assert evaluate_milestone(milestone, started, start.deadline).status is Status.ACHIEVED


def test_kpi_without_a_usable_target_is_target_pending() -> None:
    """A KPI whose targets have no value, no relative target or no deadline maps to
    targets=() and evaluates as target_pending once it has data."""
    doc = {
        "_id": "kpi.x",
        "kind": "kpi",
        "measure_id": "m.1.x",
        "direction": "increase",
        "accumulation": "level",
        "targets": [{"value": None, "deadline": "2030-03-31"}, {"value": 5.0}],
    }
    kpi = definition_from_catalogue(doc)
    assert isinstance(kpi, KpiDefinition)
    assert kpi.targets == ()
    state = apply_observation(
        KpiState.for_definition(kpi),
        Observation(event_id="e1", value=1.0, as_of=date(2024, 1, 1), received_at=RECEIVED),
    )
    assert evaluate_kpi(kpi, state, TODAY).status is Status.TARGET_PENDING


def test_targets_before_the_baseline_or_on_a_tied_deadline_are_dropped() -> None:
    """The engine needs strictly increasing deadlines after the baseline: the mapping keeps the
    first target per deadline and none due by the baseline date."""
    doc = {
        "_id": "kpi.y",
        "kind": "kpi",
        "measure_id": "m.1.y",
        "direction": "decrease",
        "baseline": {"value": 10.0, "as_of": "2022-03-31"},
        "targets": [
            {"value": 9.0, "deadline": "2022-03-31"},
            {"value": 5.0, "deadline": "2025-03-31", "comparator": "at_least"},
            {"value": 4.0, "deadline": "2025-03-31"},
            {
                "relative": {"base_fiscal_year": 2021, "change_ratio": -1.0},
                "deadline": "2027-03-31",
            },
        ],
    }
    kpi = definition_from_catalogue(doc)
    assert isinstance(kpi, KpiDefinition)
    assert [(t.value, t.deadline) for t in kpi.targets] == [
        (5.0, date(2025, 3, 31)),
        (0.0, date(2027, 3, 31)),
    ]
    assert {kpi.comparator(t) for t in kpi.targets} == {Comparator.AT_MOST}


def test_milestone_without_deadline_is_never_overdue() -> None:
    """A milestone document with no deadline still maps and is evaluated without falling due."""
    milestone = definition_from_catalogue(
        {"_id": "ms.z", "kind": "milestone", "measure_id": "m.1.z", "targets": []}
    )
    assert isinstance(milestone, MilestoneDefinition)
    state = mstate_of(milestone, [report(ReportedState.NOT_STARTED, date(2024, 6, 1))])
    assert evaluate_milestone(milestone, state, TODAY).status is Status.ON_TRACK

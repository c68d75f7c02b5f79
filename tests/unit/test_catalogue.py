"""The plan catalogue: schema, validator, CLI, and every entry checked against the plan text."""

from __future__ import annotations

import copy
import json
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from shared.catalogue.model import (
    Bound,
    Catalogue,
    Comparator,
    Direction,
    Kpi,
    MilestoneKind,
    Owner,
    OwnerBasis,
    Scope,
    SourceRef,
    Target,
)
from shared.catalogue.validate import (
    DEFAULT_CATALOGUE,
    DEFAULT_MINISTRIES,
    CatalogueError,
    find_plan_text,
    load_catalogue,
    read_plan_lines,
    validate_data,
)
from shared.cli import main
from shared.plan.dates import DatedPhrase, parse_deadline

REPO = Path(__file__).resolve().parents[2]


def _plan_path() -> Path:
    found = find_plan_text()
    assert found is not None, "the plan text is vendored at shared/plan/ (see SOURCE.md there)"
    assert found.is_relative_to(REPO), f"the plan text must come from the repository, not {found}"
    return found


@pytest.fixture(scope="module")
def plan_lines() -> list[str]:
    return read_plan_lines(_plan_path())


@pytest.fixture(scope="module")
def raw() -> dict[str, Any]:
    data = yaml.safe_load(DEFAULT_CATALOGUE.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


@pytest.fixture(scope="module")
def ministries_raw() -> dict[str, Any]:
    data = yaml.safe_load(DEFAULT_MINISTRIES.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


@pytest.fixture(scope="module")
def catalogue() -> Catalogue:
    return load_catalogue()


def _all_sources(cat: Catalogue) -> list[tuple[str, SourceRef]]:
    out: list[tuple[str, SourceRef]] = []
    for m in cat.measures:
        out.extend((m.id, s) for s in m.sources)
    for k in cat.kpis:
        out.extend((k.id, s) for s in k.sources)
        out.extend((k.id, t.source) for t in k.targets)
        if k.baseline is not None and k.baseline.source is not None:
            out.append((k.id, k.baseline.source))
    for ms in cat.milestones:
        out.extend((ms.id, s) for s in ms.sources)
    return out


# --- the key test: every quote on its line, every deadline as the parser reads it -----------


def test_every_quote_appears_verbatim_at_its_cited_line(
    catalogue: Catalogue, plan_lines: list[str]
) -> None:
    sources = _all_sources(catalogue)
    assert len(sources) > 300
    missing = [
        f"{entry}: line {s.line}: {s.quote!r}"
        for entry, s in sources
        if s.line > len(plan_lines) or s.quote not in plan_lines[s.line - 1]
    ]
    assert missing == []


def test_every_deadline_is_what_the_parser_gives_for_its_phrase(
    catalogue: Catalogue, plan_lines: list[str]
) -> None:
    ref = catalogue.plan.reference_fiscal_year
    checked = 0
    wrong: list[str] = []
    dated: list[tuple[str, str, date, Any, Any, SourceRef, str]] = [
        (
            ms.id,
            ms.deadline_text,
            ms.deadline,
            ms.precision,
            ms.bound,
            ms.source,
            ms.deadline_context.reads_as if ms.deadline_context else ms.deadline_text,
        )
        for ms in catalogue.milestones
    ]
    for k in catalogue.kpis:
        dated.extend(
            (
                k.id,
                t.deadline_text,
                t.deadline,
                t.precision,
                t.bound,
                t.source,
                t.deadline_context.reads_as if t.deadline_context else t.deadline_text,
            )
            for t in k.targets
        )
    for entry, text, deadline, precision, bound, source, reading in dated:
        # A deadline relative to its context (同年12月末) is parsed as its context reads it.
        parsed = parse_deadline(reading, reference_fiscal_year=ref)
        checked += 1
        if not isinstance(parsed, DatedPhrase):
            wrong.append(f"{entry}: {text!r} undated ({parsed.reason})")
            continue
        if (parsed.deadline, parsed.precision, parsed.bound) != (deadline, precision, bound):
            wrong.append(f"{entry}: {text!r} -> {parsed.deadline} stored {deadline}")
        # the verbatim phrase is on the cited line
        if text not in plan_lines[source.line - 1]:
            wrong.append(f"{entry}: {text!r} not on line {source.line}")
    assert wrong == []
    assert checked == len(catalogue.milestones) + sum(len(k.targets) for k in catalogue.kpis)


def test_shipped_catalogue_validates_with_sources(
    plan_lines: list[str], raw: dict[str, Any], ministries_raw: dict[str, Any]
) -> None:
    cat, problems = validate_data(raw, ministries_raw, plan_lines=plan_lines)
    assert problems == []
    assert cat is not None


# --- completeness and the shapes the plan needs ------------------------------------------


def test_counts(catalogue: Catalogue) -> None:
    assert len(catalogue.milestones) >= 150
    assert len(catalogue.kpis) >= 20
    assert sum(len(k.targets) for k in catalogue.kpis) >= 25
    assert len(catalogue.measures) >= 90
    assert {
        "digital",
        "mic",
        "mhlw",
        "meti",
        "mext",
        "mlit",
        "maff",
        "moj",
        "mof",
        "mofa",
        "mod",
        "env",
        "cao",
        "npa",
        "fsa",
        "caa",
        "reconstruction",
        "ppc",
        "cabinet_secretariat",
    } <= {m.code for m in catalogue.ministries}


def _kpi(cat: Catalogue, kpi_id: str) -> Kpi:
    return next(k for k in cat.kpis if k.id == kpi_id)


def test_5g_staged_targets(catalogue: Catalogue) -> None:
    k = _kpi(catalogue, "kpi.5g-population-coverage")
    assert [t.value for t in k.targets] == [95, 97, 99]
    assert [t.deadline for t in k.targets] == [
        date(2024, 3, 31),
        date(2026, 3, 31),
        date(2031, 3, 31),
    ]
    assert k.direction is Direction.INCREASE
    assert k.unit == "%"


def test_relative_reduction_targets(catalogue: Catalogue) -> None:
    national = _kpi(catalogue, "kpi.gov-it-operating-cost")
    (t,) = national.targets
    assert national.direction is Direction.DECREASE
    assert t.value is None
    assert t.relative is not None
    assert (t.relative.base_fiscal_year, t.relative.change_ratio) == (2020, -0.3)
    assert t.deadline == date(2026, 3, 31)  # by FY2025
    local = _kpi(catalogue, "kpi.local-gov-it-operating-cost")
    (u,) = local.targets
    assert u.relative is not None
    assert (u.relative.base_fiscal_year, u.relative.change_ratio) == (2018, -0.3)
    assert u.comparator is Comparator.AT_LEAST  # 少なくとも３割
    assert u.deadline == date(2027, 3, 31)  # by FY2026


def test_4g_uncovered_population_decrease(catalogue: Catalogue) -> None:
    k = _kpi(catalogue, "kpi.4g-uncovered-population")
    assert k.direction is Direction.DECREASE
    assert k.baseline is not None
    assert k.baseline.value == 8000
    assert k.baseline.as_of == date(2021, 3, 31)
    assert [t.value for t in k.targets] == [0]


def test_start_kind_and_bounds(catalogue: Catalogue) -> None:
    starts = [ms for ms in catalogue.milestones if ms.kind is MilestoneKind.START]
    assert len(starts) >= 30
    by_id = {ms.id: ms for ms in catalogue.milestones}
    earliest = by_id["ms.remote-oral-hearings"]
    assert earliest.bound is Bound.EARLIEST
    assert earliest.deadline_text.startswith("早ければ")
    latest = by_id["ms.records-management-system-study"]
    assert latest.bound is Bound.LATEST
    assert latest.deadline_text.startswith("遅くとも")
    assert by_id["ms.emaff-map-full"].kind is MilestoneKind.START


def test_qualitative_levels_have_tolerance_comparators(catalogue: Catalogue) -> None:
    card = _kpi(catalogue, "kpi.mynumber-card-coverage").targets[0]
    assert card.comparator is Comparator.ABOUT
    assert card.text == "ほぼ全国民"
    edi = _kpi(catalogue, "kpi.sme-e-ordering-adoption").targets[0]
    assert edi.comparator is Comparator.ABOUT
    assert edi.value == 50
    assert catalogue.defaults.approximate_tolerance > 0


def test_per_region_floor(catalogue: Catalogue) -> None:
    k = _kpi(catalogue, "kpi.5g-population-coverage-per-prefecture")
    floor = k.targets[0]
    assert floor.scope is Scope.PER_REGION
    assert floor.comparator is Comparator.AT_LEAST
    assert floor.value == 90
    assert floor.deadline == date(2026, 3, 31)


def test_depends_on(catalogue: Catalogue) -> None:
    by_id = {ms.id: ms for ms in catalogue.milestones}
    with_deps = [ms for ms in catalogue.milestones if ms.depends_on]
    assert len(with_deps) >= 20
    chain = by_id["ms.mynumber-new-scheme-in-force"]
    assert chain.depends_on == ["ms.mynumber-expansion-systems"]
    for ms in with_deps:
        for dep in ms.depends_on:
            assert by_id[dep].deadline <= ms.deadline


def test_same_target_in_two_chapters_is_one_entry(catalogue: Catalogue) -> None:
    fibre = _kpi(catalogue, "kpi.fibre-household-coverage")
    assert {s.line for s in fibre.sources} == {229, 1595}
    volunteers = _kpi(catalogue, "kpi.digital-promotion-volunteers")
    assert {s.line for s in volunteers.sources} == {209, 429}
    cyberport = next(ms for ms in catalogue.milestones if ms.id == "ms.cyberport-three-domains")
    assert len(cyberport.sources) == 2


def _owners(catalogue: Catalogue, entry_id: str) -> dict[str, Owner]:
    entry = next(e for e in catalogue.entries if e.id == entry_id)
    return {o.code: o for o in catalogue.owners_of(entry)}


def test_every_measure_and_item_has_owners_with_their_basis(catalogue: Catalogue) -> None:
    """Each owner says why: named (line + quote), inferred or default (a reason)."""
    for entry in catalogue.entries:
        owners = catalogue.owners_of(entry)
        assert owners, entry.id
        for o in owners:
            if o.basis is OwnerBasis.NAMED:
                assert o.line is not None, entry.id
                assert o.quote, entry.id
            else:
                assert o.reason, entry.id


def test_named_owners_quote_the_plan_naming_them(
    catalogue: Catalogue, plan_lines: list[str]
) -> None:
    names = {m.code: (m.name_ja, *m.aliases) for m in catalogue.ministries}
    owners = [o for m in catalogue.measures for o in m.owners]
    owners += [o for e in catalogue.entries for o in e.owners or ()]
    named = [o for o in owners if o.basis is OwnerBasis.NAMED]
    assert len(named) > 30
    for o in named:
        assert o.line is not None
        assert o.quote is not None
        assert o.quote in plan_lines[o.line - 1], (o.code, o.line, o.quote)
        assert any(name in o.quote for name in names[o.code]), (o.code, o.quote)


@pytest.mark.parametrize(
    ("entry_id", "owners"),
    [
        # 第６ 5.(3): radio and mobile networks are MIC's, like the sibling fibre KPI
        ("kpi.5g-population-coverage", {"mic"}),
        ("kpi.5g-population-coverage-per-prefecture", {"mic"}),
        ("kpi.5g-base-stations", {"mic"}),
        ("kpi.4g-uncovered-population", {"mic"}),
        ("kpi.fibre-household-coverage", {"mic"}),
        # data health: MHLW (school checkups with MEXT)
        ("ms.phr-municipal-checkups", {"mhlw"}),
        ("ms.phr-school-checkups", {"mhlw", "mext"}),
        ("ms.phr-employer-checkups", {"mhlw"}),
        ("ms.phr-e-prescriptions", {"mhlw"}),
        ("ms.phr-surgery-info", {"mhlw"}),
        ("ms.e-medical-record-standard-conclusion", {"mhlw"}),
        # passports: MOFA; MOJ only for the 戸籍 linkage of line 851
        ("ms.passport-online-application", {"mofa"}),
        ("ms.next-generation-passport", {"mofa"}),
        ("ms.passport-koseki-attachment-omission", {"mofa", "moj"}),
        # line 1349: 法務省とデジタル庁において
        ("ms.registry-system-renewal", {"moj", "digital"}),
        # courts, under 司法府's own judgment
        ("ms.remote-oral-hearings", {"courts"}),
        ("ms.court-online-filing", {"courts"}),
        ("ms.ksk-next-generation", {"nta"}),
        ("ms.patent-system-renewal", {"jpo"}),
        ("ms.spec-koseki-review", {"moj"}),
    ],
)
def test_owners_the_plan_or_the_remit_gives(
    catalogue: Catalogue, entry_id: str, owners: set[str]
) -> None:
    assert set(_owners(catalogue, entry_id)) == owners


def test_registry_system_owners_are_named_at_line_1349(catalogue: Catalogue) -> None:
    owners = _owners(catalogue, "ms.registry-system-renewal")
    for code in ("moj", "digital"):
        assert owners[code].basis is OwnerBasis.NAMED
        assert (owners[code].line, owners[code].quote) == (1349, "法務省とデジタル庁において")
    assert _owners(catalogue, "ms.passport-online-application")["mofa"].basis is (
        OwnerBasis.INFERRED
    )


def test_the_digital_agency_no_longer_owns_everything(catalogue: Catalogue) -> None:
    entries = catalogue.entries
    digital = [e for e in entries if "digital" in catalogue.ministries_of(e)]
    assert len(digital) < len(entries) / 2
    owning = {code for e in entries for code in catalogue.ministries_of(e)}
    for code in ("mhlw", "meti", "mofa", "nta", "jpo", "courts", "moj", "mic", "mext"):
        assert code in owning, code


def test_owner_evidence_is_required() -> None:
    with pytest.raises(ValidationError, match="line and the quote"):
        Owner(code="mic", basis=OwnerBasis.NAMED)
    with pytest.raises(ValidationError, match="needs a reason"):
        Owner(code="mic", basis=OwnerBasis.INFERRED)
    with pytest.raises(ValidationError, match="needs a reason"):
        Owner(code="digital", basis=OwnerBasis.DEFAULT)
    with pytest.raises(ValidationError, match="for named owners"):
        Owner(code="mic", basis=OwnerBasis.INFERRED, reason="電波 is MIC's", line=3)


def test_validator_checks_named_owners_against_the_plan(
    raw: dict[str, Any], ministries_raw: dict[str, Any], plan_lines: list[str]
) -> None:
    bad = copy.deepcopy(raw)
    registry = next(m for m in bad["measures"] if m["id"] == "m.6-5-1-10-s1.registry-system")
    registry["owners"][0]["quote"] = "法務省とデジタル庁において協議"  # not on line 1349
    registry["owners"][1]["code"] = "mofa"  # the quote does not name MOFA
    fibre = next(m for m in bad["measures"] if m["id"] == "m.6-5-3-1-s1.5g-infrastructure")
    fibre["owners"].append(dict(fibre["owners"][0]))  # listed twice
    cat, problems = validate_data(bad, ministries_raw, plan_lines=plan_lines)
    assert cat is None
    found = {(p.entry_id, p.field, p.message.split(" ")[0]) for p in problems}
    assert (registry["id"], "owners.0.quote", "quote") in found
    assert (registry["id"], "owners.1.quote", "the") in found
    assert (fibre["id"], "owners.1.code", "'mic'") in found


def test_owner_table(capsys: pytest.CaptureFixture[str], catalogue: Catalogue) -> None:
    assert main(["catalogue", "owners", "--json"]) == 0
    dist = json.loads(capsys.readouterr().out)
    items = dist["items"]
    assert set(items) == {m.code for m in catalogue.ministries}
    total = sum(len(catalogue.owners_of(e)) for e in catalogue.entries)
    assert sum(sum(row.values()) for row in items.values()) == total
    assert items["mhlw"]["inferred"] >= 7
    assert main(["catalogue", "owners"]) == 0
    out = capsys.readouterr().out
    assert all(basis in out for basis in ("named", "inferred", "default"))
    assert "ministries owning no item" in out


# --- schema ------------------------------------------------------------------------------


def test_models_are_frozen_and_forbid_extra(catalogue: Catalogue) -> None:
    k = catalogue.kpis[0]
    with pytest.raises(ValidationError):
        k.name_en = "x"  # type: ignore[misc]
    data = k.model_dump()
    data["colour"] = "red"
    with pytest.raises(ValidationError, match="colour"):
        Kpi.model_validate(data)


def test_target_needs_value_or_relative() -> None:
    with pytest.raises(ValidationError, match="value or a relative"):
        Target(
            deadline=date(2024, 3, 31),
            deadline_text="令和５年度末",
            precision="fiscal_year",
            bound="by",
            source=SourceRef(line=1, quote="令和５年度末"),
        )


# --- validator reports everything at once -----------------------------------------------


def test_validator_reports_every_problem_with_ids_and_fields(
    raw: dict[str, Any], ministries_raw: dict[str, Any], plan_lines: list[str]
) -> None:
    bad = copy.deepcopy(raw)
    ms = bad["milestones"]
    ms[0]["deadline"] = "2099-01-01"  # deadline != parser
    ms[1]["measure_id"] = "m.9-9.nowhere"  # unknown measure
    ms[2]["depends_on"] = ["ms.does-not-exist"]  # unknown dependency
    ms[3]["kind"] = "finish"  # schema error
    ms[4]["id"] = ms[5]["id"]  # duplicate id
    ms[6]["source"]["quote"] = "この引用は計画にない"  # quote not on the line
    kpi = next(k for k in bad["kpis"] if k["id"] == "kpi.5g-population-coverage")
    kpi["targets"].reverse()  # targets out of order
    bad["measures"][0]["owners"][0]["code"] = "no_such_ministry"
    cat, problems = validate_data(bad, ministries_raw, plan_lines=plan_lines)
    assert cat is None
    found = {(p.entry_id, p.field) for p in problems}
    assert (raw["milestones"][0]["id"], "deadline") in found
    assert (raw["milestones"][1]["id"], "measure_id") in found
    assert (raw["milestones"][2]["id"], "depends_on.0") in found
    assert (raw["milestones"][3]["id"], "kind") in found
    assert (raw["milestones"][5]["id"], "id") in found
    assert (raw["milestones"][6]["id"], "source.quote") in found
    assert ("kpi.5g-population-coverage", "targets.1.deadline") in found
    assert (raw["measures"][0]["id"], "owners.0") in found
    assert len(problems) >= 8


def test_load_catalogue_raises_with_all_problems(tmp_path: Path, raw: dict[str, Any]) -> None:
    bad = copy.deepcopy(raw)
    bad["kpis"][0]["direction"] = "sideways"
    bad["milestones"][0]["precision"] = "decade"
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(bad, allow_unicode=True), encoding="utf-8")
    with pytest.raises(CatalogueError) as info:
        load_catalogue(path)
    fields = {(p.entry_id, p.field) for p in info.value.problems}
    assert (raw["kpis"][0]["id"], "direction") in fields
    assert (raw["milestones"][0]["id"], "precision") in fields


# --- CLI -----------------------------------------------------------------------------------


def test_cli_show_json(capsys: pytest.CaptureFixture[str], catalogue: Catalogue) -> None:
    assert main(["catalogue", "show", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert len(doc["measures"]) == len(catalogue.measures)
    entries = doc["kpis"]
    assert len(entries) == len(catalogue.kpis) + len(catalogue.milestones)
    kinds = {e["kind"] for e in entries}
    assert kinds == {"kpi", "milestone"}
    for e in entries:
        assert {
            "id",
            "measure_id",
            "kind",
            "name_ja",
            "name_en",
            "unit",
            "direction",
            "baseline",
            "targets",
            "ministries",
            "source",
        } <= e.keys()
        assert {"line", "quote"} <= e["source"].keys()
        assert e["ministries"]
        assert e["owners"]
        assert all(o["basis"] in {"named", "inferred", "default"} for o in e["owners"])
        assert [o["code"] for o in e["owners"]] == e["ministries"]
        for t in e["targets"]:
            assert {"value", "deadline", "deadline_text"} <= t.keys()
        if e["kind"] == "milestone":
            assert e["unit"] is None
            assert e["direction"] is None
            assert len(e["targets"]) == 1
            assert e["targets"][0]["value"] is None
    fiveg = next(e for e in entries if e["id"] == "kpi.5g-population-coverage")
    assert [t["value"] for t in fiveg["targets"]] == [95, 97, 99]


def test_cli_show_summary(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["catalogue", "show"]) == 0
    out = capsys.readouterr().out
    assert "milestones:" in out
    assert "measures:" in out


def test_cli_validate(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, raw: dict[str, Any]
) -> None:
    assert main(["catalogue", "validate"]) == 0
    capsys.readouterr()
    bad = copy.deepcopy(raw)
    bad["milestones"][0]["measure_id"] = "m.0.none"
    bad["milestones"][1]["deadline"] = "2001-01-01"
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(bad, allow_unicode=True), encoding="utf-8")
    assert main(["catalogue", "validate", str(path)]) == 1
    out = capsys.readouterr().out
    assert raw["milestones"][0]["id"] in out
    assert "measure_id" in out
    assert raw["milestones"][1]["id"] in out
    assert "deadline" in out

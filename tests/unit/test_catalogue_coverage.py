"""`shinchoku catalogue coverage`: every dated or numeric sentence of the plan is catalogued or
excluded with a reason, and the new catalogue checks (relative deadlines, start markers)."""

from __future__ import annotations

import copy
from datetime import date
from typing import Any

import pytest
import yaml

from shared.catalogue.coverage import (
    CoverageExclusions,
    ExcludedSentence,
    Status,
    assess,
    carries_date_or_number,
    load_exclusions,
    plan_sentences,
    summary_line,
    unused_exclusions,
)
from shared.catalogue.model import Catalogue
from shared.catalogue.validate import (
    DEFAULT_CATALOGUE,
    DEFAULT_MINISTRIES,
    find_plan_text,
    load_catalogue,
    read_plan_lines,
    validate_data,
)
from shared.cli import main


@pytest.fixture(scope="module")
def lines() -> list[str]:
    found = find_plan_text()
    assert found is not None
    return read_plan_lines(found)


@pytest.fixture(scope="module")
def catalogue() -> Catalogue:
    return load_catalogue()


def test_every_dated_or_numeric_sentence_is_catalogued_or_excluded(
    lines: list[str], catalogue: Catalogue
) -> None:
    exclusions = load_exclusions()
    verdicts = assess(lines, catalogue, exclusions)
    assert len(verdicts) > 400
    unexplained = [
        f"{v.sentence.line}: {v.sentence.clean[:80]}"
        for v in verdicts
        if v.status is Status.UNEXPLAINED
    ]
    assert unexplained == []
    assert unused_exclusions(lines, exclusions, verdicts) == []
    assert all(v.by for v in verdicts)
    catalogued = sum(1 for v in verdicts if v.status is Status.CATALOGUED)
    assert catalogued > 150
    assert summary_line(verdicts).endswith("unexplained 0")


def test_the_gap_classes_of_the_issue_are_catalogued(
    lines: list[str], catalogue: Catalogue
) -> None:
    """Slogans with numbers (line 680), long horizons (621, 1069), an Expo (224), a tax system's
    start (1080) and relative dates (325 同年12月末, 1763 プラン策定の３年後) are catalogued."""
    verdicts = assess(lines, catalogue, load_exclusions())
    by_line: dict[int, set[str]] = {}
    for v in verdicts:
        if v.status is Status.CATALOGUED:
            by_line.setdefault(v.sentence.line, set()).update(v.by)
    assert {"kpi.smartphone-procedure-seconds", "kpi.service-launch-days"} <= by_line[680]
    assert "ms.data-driven-society-2030" in by_line[621]
    assert "ms.physical-internet-2040" in by_line[1069]
    assert "ms.expo-multilingual-interpretation" in by_line[224]
    assert "ms.invoice-system-support" in by_line[1080]
    assert "ms.analogue-review-schedule-publish" in by_line[325]
    assert "ms.womens-digital-talent-plan-review" in by_line[1763]


def _exclusions(**changes: Any) -> CoverageExclusions:
    data = yaml.safe_load(
        (DEFAULT_CATALOGUE.parent / "coverage-exclusions.yaml").read_text("utf-8")
    )
    data.update(changes)
    return CoverageExclusions.model_validate(data)


def test_sentences_footnotes_and_what_carries_a_number() -> None:
    line = "令和５年度末までに整備する。5Gインフラの整備を進める。 [12:  平成25年法律第27号]"
    sentences = plan_sentences([line])
    assert [(s.footnote, s.clean) for s in sentences] == [
        (None, "令和５年度末までに整備する。"),
        (None, "5Gインフラの整備を進める。"),
        (12, "[12:  平成25年法律第27号]"),
    ]
    assert carries_date_or_number(sentences[0])
    assert not carries_date_or_number(sentences[1])  # 5G is a name, not a number
    assert carries_date_or_number(sentences[2])
    assert not carries_date_or_number(plan_sentences(["（２）デジタル原則"])[0])  # numbering


def test_classes_and_hand_exclusions_decide_what_is_not_catalogued(
    catalogue: Catalogue,
) -> None:
    """A footnote, a citation, background before the plan, a hand exclusion; anything else
    with a number is unexplained."""
    lines = [
        "本文である。 [3:  令和３年６月18日閣議決定]",
        "「方針」（令和３年12月24日閣議決定）に基づき取り組む。",
        "令和３年（2021年）に調査を実施した。",
        "約1,900件の要望を受領した。",
        "令和８年度（2026年度）までに30地域で実装する。",
    ]
    hand = ExcludedSentence(line=4, quote="約1,900件", reason="background: requests received")
    exclusions = _exclusions(sentences=[hand.model_dump()])
    verdicts = assess(lines, catalogue, exclusions)
    got = [(v.sentence.line, v.status, v.by[0].split(":")[0] if v.by else "") for v in verdicts]
    assert got == [
        (1, Status.EXCLUDED, "footnote"),
        (2, Status.EXCLUDED, "citation"),
        (3, Status.EXCLUDED, "past"),
        (4, Status.EXCLUDED, "background"),
        (5, Status.UNEXPLAINED, ""),
    ]
    stale = _exclusions(sentences=[{**hand.model_dump(), "line": 5, "quote": "no such"}])
    assert unused_exclusions(lines, stale, assess(lines, catalogue, stale))


def test_cli_coverage_ends_with_the_counts(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["catalogue", "coverage"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert out[-1].startswith("dated or numeric sentences ")
    assert out[-1].endswith(", unexplained 0")
    assert main(["catalogue", "coverage", "--unexplained"]) == 0
    assert len(capsys.readouterr().out.strip().splitlines()) == 1


# --- relative deadlines and start markers (validator) ----------------------------------------


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


def _milestone(data: dict[str, Any], entry_id: str) -> dict[str, Any]:
    found: dict[str, Any] = next(m for m in data["milestones"] if m["id"] == entry_id)
    return found


def test_a_relative_deadline_is_dated_through_its_recorded_context(
    raw: dict[str, Any], ministries_raw: dict[str, Any], lines: list[str], catalogue: Catalogue
) -> None:
    """同年12月末 reads as 令和４年（2022年）12月末 (the year named before it on line 325);
    the reading must keep the phrase and its context quote must be on its line."""
    published = next(
        m for m in catalogue.milestones if m.id == "ms.analogue-review-schedule-publish"
    )
    assert published.deadline == date(2022, 12, 31)
    assert published.deadline_context is not None
    assert published.deadline_context.reads_as == "令和４年（2022年）12月末を目途に"
    bad = copy.deepcopy(raw)
    entry = _milestone(bad, "ms.analogue-review-schedule-publish")
    entry["deadline_context"]["reads_as"] = "令和４年（2022年）11月末を目途に"
    entry["deadline"] = "2022-11-30"
    other = _milestone(bad, "ms.womens-digital-talent-plan-review")
    other["deadline_context"]["source"]["quote"] = "令和５年４月26日男女共同参画会議決定"
    cat, problems = validate_data(bad, ministries_raw, plan_lines=lines)
    assert cat is None
    fields = {(p.entry_id, p.field) for p in problems}
    assert ("ms.analogue-review-schedule-publish", "deadline_context.reads_as") in fields
    assert ("ms.womens-digital-talent-plan-review", "deadline_context.source.quote") in fields


def test_a_start_marker_left_out_of_the_deadline_text_is_a_problem(
    raw: dict[str, Any], ministries_raw: dict[str, Any], lines: list[str]
) -> None:
    """Line 922 says 電子処方箋情報（令和５年（2023年）１月頃～）: the ～ makes it a start."""
    bad = copy.deepcopy(raw)
    entry = _milestone(bad, "ms.phr-e-prescriptions")
    assert entry["deadline_text"] == "令和５年（2023年）１月頃～"
    assert entry["bound"] == "start"
    entry.update(deadline_text="令和５年（2023年）１月頃", bound="around")
    cat, problems = validate_data(bad, ministries_raw, plan_lines=lines)
    assert cat is None
    assert ("ms.phr-e-prescriptions", "source.deadline_text") in {
        (p.entry_id, p.field) for p in problems
    }

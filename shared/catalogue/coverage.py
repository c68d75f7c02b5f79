"""Coverage of the plan by the catalogue: every sentence that carries a date or a number is
either catalogued (a KPI or milestone cites it) or excluded with a written reason.

Pure: the plan's lines, the catalogue and the exclusions go in, one verdict per sentence comes
out. `shinchoku catalogue coverage` prints them and ends with the counts; the unit tests require
0 unexplained.

Sentences: each plan line's body is split after 。; each footnote (`[N:  …]` at the end of a
line) is a sentence of its own. Markup (bookmarks, images, footnote references) is ignored.

A sentence carries a date or a number when, after the numbering of its heading (第６, （２）, ①)
and numbers that are part of a name (5G, G7, Society 5.0, 3D, SP800-63…) are set aside, it
still has a digit, 元年, or a relative date word (今年度, 来年度, 同年, 今夏, 年内…).

Exclusions (coverage-exclusions.yaml) are of two kinds:

- classes: a rule with its reason, applied to every sentence it fits (a footnote; a citation of a
  document or statute by its date or number; background dated before the plan was decided);
- sentences: one plan line and a quote from the sentence, with the reason it is not catalogued
  (restates a target catalogued elsewhere, a statistic of the current situation, not a
  commitment of the government, ...).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import yaml
from pydantic import BaseModel, ConfigDict, Field

from shared.catalogue.model import Catalogue, SourceRef
from shared.plan.dates import find_date_expressions

__all__ = [
    "DEFAULT_EXCLUSIONS",
    "CoverageExclusions",
    "ExcludedSentence",
    "Sentence",
    "Status",
    "Verdict",
    "assess",
    "load_exclusions",
    "plan_sentences",
    "summary_line",
    "unused_exclusions",
]

DEFAULT_EXCLUSIONS = Path(__file__).resolve().parent / "coverage-exclusions.yaml"

_MARKUP = re.compile(r"\[bookmark: [^\]]*\]|\[image:[^\]]*\]|\[footnoteRef:\d+\]")
_FOOTNOTE_START = re.compile(r"\s?\[(\d+):\s")
_HEADING_NUMBER = re.compile(
    r"^\s*(?:第[０-９0-9]+|[０-９0-9]+[．.）)]|（[０-９0-9]+）|\([0-9]+\)|[①-⑳]|[ⅰ-ⅹ]+）|[０-９0-9]+）)"
)
# Numbers that are part of a name, not a quantity or a date.
_NAME_NUMBERS = re.compile(
    r"Beyond\s?[5５][GＧ]|[0-9０-９]+[GＧ](?![a-zA-Z])|G[0-9]+|Society\s?[0-9.]+|Web[0-9.]+"
    r"|[0-9０-９][DＤ](?![a-zA-Z])|３次元|[23２３]次元|SP[0-9-]+|ISO[/ ]?(?:IEC)?\s?[0-9]+|IPv[46]"
    r"|COVID-19|eIDAS\s?2\.0|Version\s?[0-9]+|第[0-9０-９]+版|[0-9０-９]+\.[0-9０-９]+版"
    r"|PHR|Wi-Fi\s?[0-9]|Ｗｅｂ３|Web３|DX[0-9.]*|DFFT|HAPS|NISQ|AI|IoT"
)
_NUMBER = re.compile(r"[0-9０-９]|元年")
_RELATIVE_DATE = re.compile(
    r"今年度|本年度|来年度|翌年度|次年度|同年|今年|来年|年内|今夏|来夏|今春|今秋"
)


class Status(StrEnum):
    CATALOGUED = "catalogued"
    EXCLUDED = "excluded"
    UNEXPLAINED = "unexplained"


@dataclass(frozen=True)
class Sentence:
    line: int  # 1-based plan line
    start: int  # offsets in the raw line
    end: int
    text: str  # the raw text of the sentence (markup included)
    footnote: int | None  # the footnote number when the sentence is a footnote

    @property
    def clean(self) -> str:
        return _MARKUP.sub("", self.text).strip()


class ExcludedSentence(BaseModel):
    """One sentence excluded by hand: its line, a quote from it, and why."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    line: Annotated[int, Field(ge=1)]
    quote: Annotated[str, Field(min_length=2, max_length=120)]
    reason: Annotated[str, Field(min_length=10, max_length=300)]


class ExclusionClass(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    reason: Annotated[str, Field(min_length=10)]


class CoverageExclusions(BaseModel):
    """`coverage-exclusions.yaml`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    # The date the plan was decided: a sentence whose dates all fall before it is background.
    plan_decided_on: date
    classes: list[ExclusionClass]
    # Patterns whose numbers cite a document or statute (checked in this order).
    citation_patterns: list[str]
    sentences: list[ExcludedSentence] = Field(default_factory=list)

    def reason_of_class(self, name: str) -> str:
        for c in self.classes:
            if c.name == name:
                return c.reason
        raise KeyError(name)


@dataclass(frozen=True)
class Verdict:
    sentence: Sentence
    status: Status
    by: tuple[str, ...]  # catalogue entry ids, or the exclusion's reason


def load_exclusions(path: Path | None = None) -> CoverageExclusions:
    data = yaml.safe_load((path or DEFAULT_EXCLUSIONS).read_text(encoding="utf-8"))
    return CoverageExclusions.model_validate(data)


def plan_sentences(lines: Sequence[str]) -> list[Sentence]:
    """Every sentence of the plan: body sentences split after 。, and footnotes."""
    out: list[Sentence] = []
    for number, raw in enumerate(lines, 1):
        starts = list(_FOOTNOTE_START.finditer(raw))
        body_end = starts[0].start() if starts else len(raw)
        begin = 0
        for m in re.finditer("。", raw[:body_end]):
            out.append(Sentence(number, begin, m.end(), raw[begin : m.end()], None))
            begin = m.end()
        if raw[begin:body_end].strip():
            out.append(Sentence(number, begin, body_end, raw[begin:body_end], None))
        for i, m in enumerate(starts):
            end = starts[i + 1].start() if i + 1 < len(starts) else len(raw)
            out.append(Sentence(number, m.start(), end, raw[m.start() : end], int(m.group(1))))
    return out


def _content(sentence: Sentence) -> str:
    text = sentence.clean
    if sentence.footnote is not None:
        text = _FOOTNOTE_START.sub("", text, count=1)
    return _NAME_NUMBERS.sub("", _HEADING_NUMBER.sub("", text))


def carries_date_or_number(sentence: Sentence) -> bool:
    content = _content(sentence)
    return bool(_NUMBER.search(content) or _RELATIVE_DATE.search(content))


def _catalogue_sources(catalogue: Catalogue) -> list[tuple[str, SourceRef]]:
    refs: list[tuple[str, SourceRef]] = []
    for k in catalogue.kpis:
        refs.extend((k.id, s) for s in k.sources)
        refs.extend((k.id, t.source) for t in k.targets)
        if k.baseline is not None and k.baseline.source is not None:
            refs.append((k.id, k.baseline.source))
    for ms in catalogue.milestones:
        refs.extend((ms.id, s) for s in ms.sources)
    return refs


def _cited(sentence: Sentence, line_text: str, refs: Iterable[tuple[str, SourceRef]]) -> list[str]:
    found: list[str] = []
    for entry_id, ref in refs:
        if ref.line != sentence.line:
            continue
        at = line_text.find(ref.quote)
        while at != -1:
            # A quote cites the sentence it starts in (quotes never span two sentences).
            if sentence.start <= at < sentence.end:
                found.append(entry_id)
                break
            at = line_text.find(ref.quote, at + 1)
    return sorted(set(found))


def _class_of(sentence: Sentence, exclusions: CoverageExclusions) -> str | None:
    if sentence.footnote is not None:
        return "footnote"
    content = _content(sentence)
    stripped = content
    for pattern in exclusions.citation_patterns:
        stripped = re.sub(pattern, "", stripped)
    if not (_NUMBER.search(stripped) or _RELATIVE_DATE.search(stripped)):
        return "citation"
    dates = find_date_expressions(stripped)
    if (
        dates
        and not _RELATIVE_DATE.search(stripped)
        and all(phrase.deadline < exclusions.plan_decided_on for _, _, phrase in dates)
    ):
        rest = stripped
        for begin, end, _ in reversed(dates):
            rest = rest[:begin] + rest[end:]
        if not _NUMBER.search(rest):
            return "past"
    return None


def assess(
    lines: Sequence[str], catalogue: Catalogue, exclusions: CoverageExclusions
) -> list[Verdict]:
    """A verdict for every sentence of the plan that carries a date or a number."""
    refs = _catalogue_sources(catalogue)
    verdicts: list[Verdict] = []
    for sentence in plan_sentences(lines):
        if not carries_date_or_number(sentence):
            continue
        line_text = lines[sentence.line - 1]
        cited = _cited(sentence, line_text, refs)
        if cited:
            verdicts.append(Verdict(sentence, Status.CATALOGUED, tuple(cited)))
            continue
        by_hand = [
            e.reason
            for e in exclusions.sentences
            if e.line == sentence.line and e.quote in sentence.text
        ]
        if by_hand:
            verdicts.append(Verdict(sentence, Status.EXCLUDED, (by_hand[0],)))
            continue
        cls = _class_of(sentence, exclusions)
        if cls is not None:
            reason = f"{cls}: {exclusions.reason_of_class(cls)}"
            verdicts.append(Verdict(sentence, Status.EXCLUDED, (reason,)))
            continue
        verdicts.append(Verdict(sentence, Status.UNEXPLAINED, ()))
    return verdicts


def unused_exclusions(
    lines: Sequence[str], exclusions: CoverageExclusions, verdicts: Sequence[Verdict]
) -> list[ExcludedSentence]:
    """Hand exclusions that match no sentence carrying a date or number (stale or mistyped)."""
    used = {
        (v.sentence.line, e.quote)
        for v in verdicts
        for e in exclusions.sentences
        if e.line == v.sentence.line and e.quote in v.sentence.text
    }
    return [e for e in exclusions.sentences if (e.line, e.quote) not in used]


def summary_line(verdicts: Sequence[Verdict]) -> str:
    counts = {s: sum(1 for v in verdicts if v.status is s) for s in Status}
    return (
        f"dated or numeric sentences {len(verdicts)}, "
        f"catalogued {counts[Status.CATALOGUED]}, "
        f"excluded with a reason {counts[Status.EXCLUDED]}, "
        f"unexplained {counts[Status.UNEXPLAINED]}"
    )

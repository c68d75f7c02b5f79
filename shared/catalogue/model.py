"""The catalogue schema: the plan's measures, numeric KPIs and dated milestones as data.

Every model is frozen and forbids unknown fields, so a typo in the YAML is an error, not a
silently ignored key. Dates are the *parsed* deadlines (end of the stated period, as
`shared.plan.dates.parse_deadline` computes them); the verbatim phrase is kept next to them
in `deadline_text`, and every target and milestone cites its source line and a short quote.
"""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from shared.plan.dates import Bound, Precision

__all__ = [
    "Accumulation",
    "Baseline",
    "Bound",
    "Catalogue",
    "Comparator",
    "Defaults",
    "Direction",
    "Kpi",
    "Measure",
    "Milestone",
    "MilestoneKind",
    "Ministry",
    "MinistryTable",
    "Ownership",
    "OwnershipRule",
    "PlanMeta",
    "Precision",
    "RelativeTarget",
    "Scope",
    "SourceRef",
    "Target",
]

MEASURE_ID_RE = r"^m\.[0-9]+(-[0-9a-z]+)*\.[a-z0-9]+(-[a-z0-9]+)*$"
KPI_ID_RE = r"^kpi\.[a-z0-9]+(-[a-z0-9]+)*$"
MILESTONE_ID_RE = r"^ms\.[a-z0-9]+(-[a-z0-9]+)*$"
MINISTRY_CODE_RE = r"^[a-z][a-z0-9_]*$"

MeasureId = Annotated[str, StringConstraints(pattern=MEASURE_ID_RE)]
KpiId = Annotated[str, StringConstraints(pattern=KPI_ID_RE)]
MilestoneId = Annotated[str, StringConstraints(pattern=MILESTONE_ID_RE)]
MinistryCode = Annotated[str, StringConstraints(pattern=MINISTRY_CODE_RE)]
NonEmpty = Annotated[str, StringConstraints(min_length=1, strip_whitespace=False)]
# Quotes are short verbatim substrings of one plan line (a few words around the date/number).
Quote = Annotated[str, StringConstraints(min_length=2, max_length=100)]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Direction(StrEnum):
    INCREASE = "increase"
    DECREASE = "decrease"


class Accumulation(StrEnum):
    CUMULATIVE = "cumulative"  # a running total (stations built, people trained so far)
    PER_PERIOD = "per_period"  # a flow measured per period (people trained per year)
    LEVEL = "level"  # a state observed at a point in time (coverage %, cost per year)


class Comparator(StrEnum):
    AT_LEAST = "at_least"  # 以上, 少なくとも
    AT_MOST = "at_most"  # 以下, 未満
    ABOUT = "about"  # 約, 程度, ほぼ: met within tolerance
    EXACTLY = "exactly"  # a plain figure (still compared with the default tolerance)


class Scope(StrEnum):
    NATIONAL = "national"
    PER_REGION = "per_region"  # the value must hold in every region (e.g. 各都道府県)


class MilestoneKind(StrEnum):
    DELIVER = "deliver"  # met when the deliverable is finished by the deadline
    START = "start"  # met when the activity has *started* by the deadline (〜から運用)


class Ownership(StrEnum):
    STATED = "stated"  # the text names the ministries
    DEFAULTED = "defaulted"  # the text is silent or says 各府省庁/関係府省庁: rules applied


class SourceRef(_Frozen):
    """Where the plan says it: 1-based line number and a verbatim quote from that line."""

    line: Annotated[int, Field(ge=1)]
    quote: Quote


class Ministry(_Frozen):
    code: MinistryCode
    name_ja: NonEmpty
    name_en: NonEmpty
    # Other spellings that identify the ministry in the plan text (e.g. NISC for the
    # cabinet secretariat's cybersecurity centre). Used by the extraction tool only.
    aliases: list[NonEmpty] = Field(default_factory=list)


class OwnershipRule(_Frozen):
    """Who owns a measure when the text names no ministry or only a collective phrase."""

    text: NonEmpty  # the literal phrase, e.g. 各府省庁
    assign: Annotated[list[MinistryCode], Field(min_length=1)]
    note: str | None = None


class MinistryTable(_Frozen):
    """`ministries.yaml`: the ministry codes and the editable default-ownership rules."""

    default_owner: MinistryCode
    ministries: Annotated[list[Ministry], Field(min_length=1)]
    ownership_rules: list[OwnershipRule] = Field(default_factory=list)

    def assignment_for(self, ministries_text: str | None) -> list[str]:
        """Ministries a defaulted measure gets: the first rule whose phrase occurs, else
        the default owner (the Digital Agency as the plan's control tower)."""
        if ministries_text:
            for rule in self.ownership_rules:
                if rule.text in ministries_text:
                    return list(rule.assign)
        return [self.default_owner]


class PlanMeta(_Frozen):
    title_ja: NonEmpty
    title_en: NonEmpty
    decided_on: date  # cabinet decision date
    reference_fiscal_year: int  # fiscal year in which the plan was decided
    text_file: NonEmpty  # file name under shared/plan of the text the line numbers refer to
    text_lines: Annotated[int, Field(ge=1)]


class Defaults(_Frozen):
    """Used where the plan is silent."""

    reporting_cadence: Literal["monthly", "quarterly", "half_yearly", "yearly"] = "quarterly"
    reporting_cadence_days: Annotated[int, Field(ge=1)] = 91
    # Relative shortfall of the expected trajectory below which a KPI counts as at risk.
    at_risk_tolerance: Annotated[float, Field(ge=0, le=1)] = 0.1
    # Tolerance applied to "about"/"ほぼ"/"程度" targets when the entry sets none.
    approximate_tolerance: Annotated[float, Field(ge=0, le=1)] = 0.05
    # Days after a missed report before an entry is flagged as stale.
    stale_grace_days: Annotated[int, Field(ge=0)] = 30


class Measure(_Frozen):
    id: MeasureId
    title_ja: NonEmpty
    title_en: NonEmpty
    section_path: NonEmpty  # as the plan numbers it, e.g. "第６ 1.(4) ①"
    ministries: list[MinistryCode] = Field(default_factory=list)
    ministries_text: str | None = None  # what the text literally said (e.g. "各府省庁")
    ownership: Ownership
    sources: Annotated[list[SourceRef], Field(min_length=1)]

    @model_validator(mode="after")
    def _stated_needs_ministries(self) -> Measure:
        if self.ownership is Ownership.STATED and not self.ministries:
            raise ValueError("ownership 'stated' requires at least one ministry code")
        return self


class Baseline(_Frozen):
    value: float
    as_of: date | None = None
    as_of_text: str | None = None  # verbatim, e.g. "2020年度末"
    text: str | None = None  # verbatim qualifier, e.g. "30%台"
    source: SourceRef | None = None


class RelativeTarget(_Frozen):
    """A target stated against a base year, e.g. "FY2020 比で３割削減" → (2020, -0.30)."""

    base_fiscal_year: Annotated[int, Field(ge=1989, le=2100)]
    change_ratio: Annotated[float, Field(ge=-1, le=10)]


class Target(_Frozen):
    value: float | None = None
    relative: RelativeTarget | None = None
    comparator: Comparator = Comparator.EXACTLY
    tolerance: Annotated[float, Field(ge=0)] | None = None  # absolute, in the KPI's unit
    scope: Scope = Scope.NATIONAL
    deadline: date
    deadline_text: NonEmpty
    precision: Precision
    bound: Bound
    text: str | None = None  # verbatim level phrase when qualitative (ほぼ全国民, 約５割)
    source: SourceRef

    @model_validator(mode="after")
    def _value_or_relative(self) -> Target:
        if self.value is None and self.relative is None:
            raise ValueError("a target needs a value or a relative target")
        return self


class Kpi(_Frozen):
    id: KpiId
    measure_id: MeasureId
    name_ja: NonEmpty
    name_en: NonEmpty
    unit: NonEmpty  # "%", "persons", "base_stations", "JPY_100m", ...
    direction: Direction
    accumulation: Accumulation
    baseline: Baseline | None = None
    targets: Annotated[list[Target], Field(min_length=1)]
    sources: Annotated[list[SourceRef], Field(min_length=1)]
    ministries: list[MinistryCode] | None = None  # override of the measure's ministries
    note: str | None = None


class Milestone(_Frozen):
    id: MilestoneId
    measure_id: MeasureId
    name_ja: NonEmpty
    name_en: NonEmpty
    kind: MilestoneKind = MilestoneKind.DELIVER
    deadline: date
    deadline_text: NonEmpty
    precision: Precision
    bound: Bound
    depends_on: list[MilestoneId] = Field(default_factory=list)
    source: SourceRef
    # The same deliverable restated elsewhere in the plan (one entry, every source).
    other_sources: list[SourceRef] = Field(default_factory=list)
    ministries: list[MinistryCode] | None = None  # override of the measure's ministries
    note: str | None = None

    @property
    def sources(self) -> list[SourceRef]:
        return [self.source, *self.other_sources]


class Catalogue(_Frozen):
    version: NonEmpty
    plan: PlanMeta
    defaults: Defaults = Field(default_factory=Defaults)
    default_owner: MinistryCode
    ministries: Annotated[list[Ministry], Field(min_length=1)]
    ownership_rules: list[OwnershipRule] = Field(default_factory=list)
    measures: list[Measure]
    kpis: list[Kpi]
    milestones: list[Milestone]

    def measure(self, measure_id: str) -> Measure:
        for m in self.measures:
            if m.id == measure_id:
                return m
        raise KeyError(measure_id)

    def ministries_of(self, entry: Kpi | Milestone) -> list[str]:
        if entry.ministries is not None:
            return list(entry.ministries)
        return list(self.measure(entry.measure_id).ministries)

    def show_json(self) -> dict[str, Any]:
        """The `catalogue show --json` document: measures, and KPIs and milestones in one
        `kpis` list distinguished by `kind`."""
        entries: list[dict[str, Any]] = []
        for k in self.kpis:
            entries.append(
                {
                    "id": k.id,
                    "measure_id": k.measure_id,
                    "kind": "kpi",
                    "name_ja": k.name_ja,
                    "name_en": k.name_en,
                    "unit": k.unit,
                    "direction": k.direction.value,
                    "accumulation": k.accumulation.value,
                    "baseline": k.baseline.model_dump(mode="json") if k.baseline else None,
                    "targets": [t.model_dump(mode="json") for t in k.targets],
                    "ministries": self.ministries_of(k),
                    "source": k.sources[0].model_dump(mode="json"),
                    "sources": [s.model_dump(mode="json") for s in k.sources],
                }
            )
        for ms in self.milestones:
            entries.append(
                {
                    "id": ms.id,
                    "measure_id": ms.measure_id,
                    "kind": "milestone",
                    "milestone_kind": ms.kind.value,
                    "name_ja": ms.name_ja,
                    "name_en": ms.name_en,
                    "unit": None,
                    "direction": None,
                    "accumulation": None,
                    "baseline": None,
                    "targets": [
                        {
                            "value": None,
                            "deadline": ms.deadline.isoformat(),
                            "deadline_text": ms.deadline_text,
                            "precision": ms.precision.value,
                            "bound": ms.bound.value,
                            "source": ms.source.model_dump(mode="json"),
                        }
                    ],
                    "depends_on": list(ms.depends_on),
                    "ministries": self.ministries_of(ms),
                    "source": ms.source.model_dump(mode="json"),
                    "sources": [s.model_dump(mode="json") for s in ms.sources],
                }
            )
        return {
            "version": self.version,
            "plan": self.plan.model_dump(mode="json"),
            "defaults": self.defaults.model_dump(mode="json"),
            "ministries": [
                {"code": m.code, "name_ja": m.name_ja, "name_en": m.name_en}
                for m in self.ministries
            ],
            "measures": [m.model_dump(mode="json") for m in self.measures],
            "kpis": entries,
        }

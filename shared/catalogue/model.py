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
    "DeadlineContext",
    "Defaults",
    "Direction",
    "Kpi",
    "Measure",
    "Milestone",
    "MilestoneKind",
    "Ministry",
    "MinistryTable",
    "Owner",
    "OwnerBasis",
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


class OwnerBasis(StrEnum):
    """Why a ministry owns a measure or item."""

    NAMED = "named"  # the plan names it: `line` + verbatim `quote` naming the ministry
    INFERRED = "inferred"  # the subject falls in the ministry's remit: `reason` says which
    DEFAULT = "default"  # nothing better can be said: `reason` says why this owner


class SourceRef(_Frozen):
    """Where the plan says it: 1-based line number and a verbatim quote from that line."""

    line: Annotated[int, Field(ge=1)]
    quote: Quote


class DeadlineContext(_Frozen):
    """How a deadline stated relative to its context (同年12月末, 翌年度, プラン策定の３年後) is
    read: `reads_as` is the phrase with the year the context gives (令和４年（2022年）12月末を
    目途に), which the parser dates; `source` quotes where the plan states that year."""

    reads_as: NonEmpty
    source: SourceRef
    note: NonEmpty


class Ministry(_Frozen):
    code: MinistryCode
    name_ja: NonEmpty
    name_en: NonEmpty
    # Other spellings that identify the ministry in the plan text (e.g. NISC for the
    # cabinet secretariat's cybersecurity centre). Used by the extraction tool only.
    aliases: list[NonEmpty] = Field(default_factory=list)


class Owner(_Frozen):
    """One owner of a measure or item and the basis for it.

    `named`: `line` and `quote` (verbatim on that line, and naming the ministry by its Japanese
    name or an alias); `inferred`: `reason`, one line naming the subject and the ministry's remit
    (旅券 → MOFA under the Passport Act); `default`: `reason`, why nothing better can be said.
    """

    code: MinistryCode
    basis: OwnerBasis
    line: Annotated[int, Field(ge=1)] | None = None
    quote: Quote | None = None
    reason: Annotated[str, StringConstraints(min_length=10, max_length=300)] | None = None

    @model_validator(mode="after")
    def _basis_has_its_evidence(self) -> Owner:
        if self.basis is OwnerBasis.NAMED:
            if self.line is None or self.quote is None:
                raise ValueError("a named owner needs the line and the quote that name it")
        elif self.reason is None:
            raise ValueError(f"an owner by {self.basis.value} needs a reason")
        elif self.line is not None or self.quote is not None:
            raise ValueError("line and quote are for named owners; give a reason instead")
        return self

    @property
    def source(self) -> SourceRef | None:
        if self.line is None or self.quote is None:
            return None
        return SourceRef(line=self.line, quote=self.quote)


Owners = Annotated[list[Owner], Field(min_length=1)]


def owner_codes(owners: list[Owner]) -> list[str]:
    """The ministry codes of `owners`, in order, once each."""
    return list(dict.fromkeys(o.code for o in owners))


class MinistryTable(_Frozen):
    """`ministries.yaml`: the ministry codes, and the owner the demo feed falls back to."""

    default_owner: MinistryCode
    ministries: Annotated[list[Ministry], Field(min_length=1)]


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
    ministries_text: str | None = None  # the collective phrase the text uses (e.g. "各府省庁")
    owners: Owners
    sources: Annotated[list[SourceRef], Field(min_length=1)]

    @property
    def ministries(self) -> list[str]:
        return owner_codes(self.owners)


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
    deadline_context: DeadlineContext | None = None  # a relative deadline resolved
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
    owners: Owners | None = None  # when the item's owners differ from its measure's
    note: str | None = None


class Milestone(_Frozen):
    id: MilestoneId
    measure_id: MeasureId
    name_ja: NonEmpty
    name_en: NonEmpty
    kind: MilestoneKind = MilestoneKind.DELIVER
    deadline: date
    deadline_text: NonEmpty
    deadline_context: DeadlineContext | None = None  # a relative deadline resolved
    precision: Precision
    bound: Bound
    depends_on: list[MilestoneId] = Field(default_factory=list)
    source: SourceRef
    # The same deliverable restated elsewhere in the plan (one entry, every source).
    other_sources: list[SourceRef] = Field(default_factory=list)
    owners: Owners | None = None  # when the item's owners differ from its measure's
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
    measures: list[Measure]
    kpis: list[Kpi]
    milestones: list[Milestone]

    @property
    def entries(self) -> list[Kpi | Milestone]:
        """Every item the plan tracks: the KPIs, then the milestones."""
        return [*self.kpis, *self.milestones]

    def measure(self, measure_id: str) -> Measure:
        for m in self.measures:
            if m.id == measure_id:
                return m
        raise KeyError(measure_id)

    def owners_of(self, entry: Kpi | Milestone) -> list[Owner]:
        """The item's own owners when it has them, else its measure's."""
        if entry.owners is not None:
            return list(entry.owners)
        return list(self.measure(entry.measure_id).owners)

    def ministries_of(self, entry: Kpi | Milestone) -> list[str]:
        return owner_codes(self.owners_of(entry))

    def _owners_json(self, entry: Kpi | Milestone) -> dict[str, Any]:
        owners = self.owners_of(entry)
        return {
            "ministries": owner_codes(owners),
            "owners": [o.model_dump(mode="json", exclude_none=True) for o in owners],
            "owners_from": "item" if entry.owners is not None else "measure",
        }

    def measure_json(self, measure: Measure) -> dict[str, Any]:
        """A measure as `show --json` gives it: its owners with their basis, and the codes.
        `ownership` summarises the basis for older readers: stated when any owner is named."""
        doc = measure.model_dump(mode="json", exclude_none=True)
        doc["ministries_text"] = measure.ministries_text
        doc["owners"] = [o.model_dump(mode="json", exclude_none=True) for o in measure.owners]
        doc["ministries"] = measure.ministries
        named = any(o.basis is OwnerBasis.NAMED for o in measure.owners)
        doc["ownership"] = "stated" if named else "defaulted"
        return doc

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
                    **self._owners_json(k),
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
                            "deadline_context": (
                                ms.deadline_context.model_dump(mode="json")
                                if ms.deadline_context
                                else None
                            ),
                            "precision": ms.precision.value,
                            "bound": ms.bound.value,
                            "source": ms.source.model_dump(mode="json"),
                        }
                    ],
                    "depends_on": list(ms.depends_on),
                    **self._owners_json(ms),
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
            "measures": [self.measure_json(m) for m in self.measures],
            "kpis": entries,
        }

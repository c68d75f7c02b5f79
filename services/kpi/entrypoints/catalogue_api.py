"""Read API over the loaded plan catalogue: measures, KPIs and milestones, ministries.

The queries are in adapters/catalogue_reads.py (one query and one count per page, whatever the
catalogue's size); the routes choose what of each document is shown. Every entry
carries both its Japanese and English names (`name_ja`/`name_en`, `title_ja`/`title_en`);
`lang=ja|en` adds `name` (`title` for measures) in the chosen language for display.
"""

from __future__ import annotations

from typing import Annotated, Any, Generic, Literal, TypeVar

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field

from services.kpi.adapters.catalogue_reads import CatalogueReads
from services.kpi.entrypoints.deps import Queries, Reads
from shared.http.problems import FieldError, NotFound, ValidationProblem, problem_responses

Document = dict[str, Any]
T = TypeVar("T")
Lang = Literal["ja", "en"]

# Load metadata that stays internal.
_HIDDEN = frozenset({"_id", "content_hash", "defaults"})


router = APIRouter(prefix="/v1", tags=["catalogue"])

# --- parameters ---------------------------------------------------------------------------------

MinistryFilter = Annotated[
    list[str] | None,
    Query(
        description="Ministry code (see /v1/ministries), e.g. `digital`, `mic`; repeat the "
        "parameter for any of several. Unknown codes are a 422 problem.",
        examples=["digital"],
    ),
]
SectionFilter = Annotated[
    str | None,
    Query(
        min_length=1,
        max_length=100,
        description="Prefix of the plan's section path, e.g. `第６` or `第６ 5.(1)`. "
        "`第6` (ASCII digit) is read as `第６`.",
        examples=["第６"],
    ),
]
LangParam = Annotated[
    Lang | None,
    Query(
        description="Both languages are always returned; `ja` or `en` adds a `name` (`title` "
        "for measures) field in that language.",
    ),
]
Limit = Annotated[int, Query(ge=1, le=500, description="Page size")]
# Bounded: MongoDB refuses a skip beyond 8-byte integers (an unbounded offset was a 500).
MAX_OFFSET = 1_000_000
Offset = Annotated[int, Query(ge=0, le=MAX_OFFSET, description="Entries to skip")]
IncludeRetired = Annotated[
    bool,
    Query(description="Also list entries retired by a later catalogue version (state=retired)"),
]

# --- response models (documentation; the documents carry every field of the catalogue) --------


class SourceOut(BaseModel):
    line: int = Field(description="1-based line in the plan text")
    quote: str = Field(description="Verbatim quote from that line")


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class MinistryOut(_Open):
    code: str
    name_ja: str
    name_en: str
    name: str | None = Field(default=None, description="In the `lang` asked for")
    aliases: list[str] = []
    state: str = Field(description="active, or retired when absent from the current version")
    measure_count: int = Field(description="Measures (not retired) the ministry owns")
    item_count: int = Field(description="KPIs and milestones (not retired) it owns")


class MeasureOut(_Open):
    id: str
    title_ja: str
    title_en: str
    title: str | None = Field(default=None, description="In the `lang` asked for")
    section_path: str = Field(description="As the plan numbers it, e.g. 第６ 1.(4) ①")
    ministries: list[str]
    ministries_text: str | None = None
    ownership: str = Field(description="stated (named by the text) or defaulted (by rules)")
    sources: list[SourceOut]
    state: str
    catalogue_version: str | None = None


class ItemOut(_Open):
    id: str
    kind: Literal["kpi", "milestone"]
    milestone_kind: Literal["deliver", "start"] | None = None
    measure_id: str
    section_path: str | None = None
    name_ja: str
    name_en: str
    name: str | None = Field(default=None, description="In the `lang` asked for")
    unit: str | None = None
    direction: str | None = None
    accumulation: str | None = None
    baseline: dict[str, Any] | None = None
    targets: list[dict[str, Any]] = Field(
        description="Staged targets: value or relative {base_fiscal_year, change_ratio}, "
        "comparator, tolerance, scope, deadline with its verbatim deadline_text, source. A "
        "milestone has one, with value null."
    )
    depends_on: list[str] = []
    ministries: list[str]
    source: SourceOut | None = None
    sources: list[SourceOut] = []
    state: str
    catalogue_version: str | None = None
    retired_in_version: str | None = None


class MeasureDetailOut(MeasureOut):
    kpis: list[ItemOut] = Field(description="The measure's KPIs and milestones")
    status: dict[str, Any] = Field(
        description="The computed status (worst child, with the children), the ministry's latest "
        "self-assessment beside it, and the divergence between the two (as /status gives)."
    )


class Page(BaseModel, Generic[T]):
    items: list[T]
    total: int = Field(description="Entries matching the filters, over all pages")
    limit: int
    offset: int


class MinistryPage(Page[MinistryOut]):
    pass


class MeasurePage(Page[MeasureOut]):
    pass


class ItemPage(Page[ItemOut]):
    pass


# --- views --------------------------------------------------------------------------------------


def _view(doc: Document, name_field: str, lang: Lang | None) -> Document:
    view = {k: v for k, v in doc.items() if k not in _HIDDEN}
    if lang is not None:
        view[name_field] = doc.get(f"{name_field}_{lang}")
    return view


def item_view(doc: Document, lang: Lang | None = None) -> Document:
    """A catalogue item as the API shows it (also used by GET /v1/kpis/{id})."""
    view = _view(doc, "name", lang)
    view.setdefault("id", doc["_id"])
    view.setdefault("state", "active")
    return view


async def _check_ministries(reads: CatalogueReads, codes: list[str] | None) -> None:
    if not codes:
        return
    unknown = await reads.unknown_ministries(codes)
    if unknown:
        raise ValidationProblem(
            f"unknown ministry code(s): {', '.join(unknown)}",
            errors=[
                FieldError(field="ministry", reason=f"unknown ministry code {c!r}") for c in unknown
            ],
        )


# --- routes -------------------------------------------------------------------------------------


@router.get(
    "/ministries",
    summary="Ministries, with how many measures and KPIs/milestones each owns",
    description="Ordered as in the catalogue's ministry table. `section` keeps the ministries "
    "owning a measure in that section; `ministry` picks codes. Names in Japanese and English.",
    response_model=MinistryPage,
    responses=problem_responses(ValidationProblem),
)
async def list_ministries(
    reads: Reads,
    ministry: MinistryFilter = None,
    section: SectionFilter = None,
    lang: LangParam = None,
    include_retired: IncludeRetired = False,
    limit: Limit = 50,
    offset: Offset = 0,
) -> Document:
    await _check_ministries(reads, ministry)
    measure_counts = await reads.counts_by_ministry("measures", section)
    item_counts = await reads.counts_by_ministry("items", section)
    codes: set[str] | None = set(ministry) if ministry else None
    if section:
        codes = set(measure_counts) if codes is None else codes & set(measure_counts)
    docs, total = await reads.ministries(codes, include_retired, limit, offset)
    items = [
        {
            **_view(doc, "name", lang),
            "code": doc["_id"],
            "state": doc.get("state", "active"),
            "measure_count": measure_counts.get(doc["_id"], 0),
            "item_count": item_counts.get(doc["_id"], 0),
        }
        for doc in docs
    ]
    return {"items": items, "total": total, "limit": limit, "offset": offset}


@router.get(
    "/measures",
    summary="The plan's measures, filterable by ministry and section",
    description="Measures of the loaded catalogue in id order (ids follow the plan's "
    "numbering). Each has `title_ja` and `title_en`; `lang` adds `title`.",
    response_model=MeasurePage,
    responses=problem_responses(ValidationProblem),
)
async def list_measures(
    reads: Reads,
    ministry: MinistryFilter = None,
    section: SectionFilter = None,
    lang: LangParam = None,
    include_retired: IncludeRetired = False,
    limit: Limit = 50,
    offset: Offset = 0,
) -> Document:
    await _check_ministries(reads, ministry)
    docs, total = await reads.measures(ministry, section, include_retired, limit, offset)
    items = [_view(doc, "title", lang) for doc in docs]
    return {"items": items, "total": total, "limit": limit, "offset": offset}


@router.get(
    "/measures/{measure_id}",
    summary="One measure with its KPIs and milestones",
    description="Retired measures are served too (state=retired); so are their entries.",
    response_model=MeasureDetailOut,
    responses=problem_responses(NotFound),
)
async def get_measure(
    measure_id: str, reads: Reads, queries: Queries, lang: LangParam = None
) -> Document:
    doc = await reads.measure(measure_id)
    if doc is None:
        raise NotFound(f"no measure {measure_id!r} in the catalogue")
    entries = await reads.measure_items(measure_id)
    rollup = await queries.measure_rollup(measure_id)
    return {
        **_view(doc, "title", lang),
        "kpis": [item_view(item, lang) for item in entries],
        "status": {**rollup.model_dump(mode="json"), "divergence_flag": rollup.divergence_flag},
    }


@router.get(
    "/kpis",
    summary="Numeric KPIs and dated milestones, filterable by ministry, section, measure, kind",
    description="Both kinds in one list (`kind` kpi|milestone), in id order, with targets, "
    "units and sources. Names in `name_ja` and `name_en`; `lang` adds `name`. The status of "
    "one entry is at /v1/kpis/{kpi_id}.",
    response_model=ItemPage,
    responses=problem_responses(ValidationProblem),
)
async def list_kpis(
    reads: Reads,
    ministry: MinistryFilter = None,
    section: SectionFilter = None,
    measure_id: Annotated[str | None, Query(description="Only this measure's entries")] = None,
    kind: Annotated[
        Literal["kpi", "milestone"] | None, Query(description="Only KPIs or only milestones")
    ] = None,
    lang: LangParam = None,
    include_retired: IncludeRetired = False,
    limit: Limit = 50,
    offset: Offset = 0,
) -> Document:
    await _check_ministries(reads, ministry)
    docs, total = await reads.items(
        ministry, section, measure_id, kind, include_retired, limit, offset
    )
    items = [item_view(doc, lang) for doc in docs]
    return {"items": items, "total": total, "limit": limit, "offset": offset}

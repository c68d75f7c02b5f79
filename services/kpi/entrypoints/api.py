"""Query API of the kpi service."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from services.kpi.adapters.definitions import definition_from_catalogue
from services.kpi.domain.model import Evaluation
from services.kpi.entrypoints.catalogue_api import ItemOut, item_view
from services.kpi.entrypoints.deps import Catalogue, HistoryReads, Queries, Repository
from services.kpi.ports import HistoryReadTooLong, StoredEvent
from shared.events.contracts import Status
from shared.http.problems import (
    NotFound,
    ServiceUnavailable,
    TooManyRequests,
    ValidationProblem,
    problem_responses,
)

router = APIRouter(prefix="/v1", tags=["kpis"])


class ObservationOut(BaseModel):
    event_id: str
    as_of: str
    data: dict[str, Any] = Field(description="The event's data as reported")


@dataclass(frozen=True)
class HistoryView:
    """What one read of a subject's history gives (shared by identical concurrent requests)."""

    item: dict[str, Any]
    state: dict[str, Any] | None
    evaluation: Evaluation | None
    events: list[StoredEvent]
    history_truncated: bool


class KpiStatusOut(ItemOut):
    """Documentation of the answer (the route builds it as a plain dict)."""

    status: Status
    as_of: str | None = Field(description="The date asked for with `as_of`, else null")
    evaluation: dict[str, Any] | None = Field(
        description="Rule, message, inputs and evidence of the status; null before any event"
    )
    episode: dict[str, Any] | None
    observations: list[ObservationOut]
    observations_truncated: bool = Field(
        description="True when the KPI has older observations than the ones listed"
    )
    history_truncated: bool = Field(
        description="With `as_of`: true when the evaluation folded only the latest "
        "`as_of_events_limit` events up to the date (older ones exist and were left out)"
    )


@router.get(
    "/kpis/{kpi_id}",
    summary="A KPI's or milestone's current status and explanation, with its definition",
    description="Status, evaluation, episode and the latest 1,000 observations (as_of "
    "ascending; `observations_truncated` says whether there are older ones), beside the "
    "catalogue definition (names in Japanese and English, unit, baseline, targets, sources, "
    "state). Reading the history is bounded: at most `max_concurrent_history_reads` such "
    "reads run at once (more are answered 429 with `Retry-After`), one may use the database "
    "for at most `history_read_max_time_s` (503 with `Retry-After` beyond), and an `as_of` "
    "evaluation folds at most the latest `as_of_events_limit` events up to the date.",
    responses={
        200: {"model": KpiStatusOut},
        **problem_responses(NotFound, ValidationProblem, TooManyRequests, ServiceUnavailable),
    },
)
async def get_kpi(
    kpi_id: str,
    repo: Repository,
    store: Catalogue,
    queries: Queries,
    limits: HistoryReads,
    as_of: Annotated[
        date | None,
        Query(description="Evaluate as on this past date, from the events with as_of <= it."),
    ] = None,
) -> dict[str, Any]:
    shown = limits.observations_shown

    async def read() -> HistoryView:
        # Every read of the subject's state and history is a scan on FerretDB: bounded
        # together, and refused before any database work when the slots are taken.
        async with limits.reads.slot():
            item = await store.item(kpi_id)
            if item is None:
                raise NotFound(f"no KPI or milestone {kpi_id!r} in the catalogue")
            state = await repo.state(kpi_id)
            try:
                if as_of is None:
                    latest = await queries.latest_history(kpi_id, limit=shown + 1)
                    return HistoryView(item, state, None, latest, history_truncated=False)
                # One read of the history serves both the evaluation and the listing.
                past = await queries.history_as_of(definition_from_catalogue(item), as_of)
            except HistoryReadTooLong as error:
                raise ServiceUnavailable(
                    f"{error}, the most one request may use; try again in {limits.retry_after_s} s",
                    headers={"Retry-After": str(limits.retry_after_s)},
                ) from error
            return HistoryView(item, state, past.evaluation, past.events, past.truncated)

    view = await limits.flights.run((kpi_id, as_of), read)
    item, state = view.item, view.state
    observations, history_truncated = view.events, view.history_truncated
    evaluation = state["evaluation"] if state else None
    status = state["status"] if state else "no_data"
    if view.evaluation is not None:
        evaluation, status = view.evaluation.model_dump(mode="json"), view.evaluation.status.value
    truncated = history_truncated or len(observations) > shown
    observations = observations[-shown:]  # a new list: the shared view is left as it was
    return {
        **item_view(item),
        "id": kpi_id,
        "kind": item.get("kind"),
        "measure_id": item.get("measure_id"),
        "name_ja": item.get("name_ja"),
        "name_en": item.get("name_en"),
        "ministries": item.get("ministries", []),
        "status": status,
        "as_of": as_of.isoformat() if as_of else None,
        "evaluation": evaluation,
        "episode": state["episode"] if state else None,
        "observations": [
            {"event_id": o.event_id, "as_of": o.as_of.isoformat(), "data": o.data}
            for o in observations
        ],
        # Only the latest `shown` are listed; the evaluation uses up to as_of_events_limit.
        "observations_truncated": truncated,
        "history_truncated": history_truncated,
    }

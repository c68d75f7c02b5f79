"""Status views of the kpi service: measure rollups, ministry scorecards, open-data export."""

from __future__ import annotations

import csv
import io
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from services.kpi.domain.model import SelfAssessment
from services.kpi.domain.rollup import ChildStatus, Divergence, Scorecard
from services.kpi.entrypoints.deps import Catalogue, Queries, Repository
from shared.events.contracts import Status
from shared.http.problems import NotFound, ValidationProblem, problem_responses

router = APIRouter(prefix="/v1", tags=["status"])

EXPORT_COLUMNS = (
    "event_id",
    "time",
    "kpi_id",
    "kind",
    "measure_id",
    "ministries",
    "previous_status",
    "status",
    "episode_id",
    "evaluated_on",
    "rule_id",
    "message",
)


# Documentation of the answers (the routes build them as plain dicts); the property tests hold
# every answer to these schemas.


class MeasureStatusOut(BaseModel):
    """A `MeasureRollup` with its `divergence_flag`."""

    model_config = ConfigDict(extra="allow")

    measure_id: str
    status: Status
    children: list[ChildStatus] = Field(description="All children, worst first")
    worst_children: list[str] = Field(description="The children that set the status")
    ministries: list[str]
    self_assessment: SelfAssessment | None
    divergence: Divergence
    divergence_flag: bool = Field(description="True when the divergence is major")


class TransitionRow(BaseModel):
    event_id: str
    time: str
    kpi_id: str
    kind: str
    measure_id: str
    ministries: str = Field(description="Space-separated ministry codes")
    previous_status: str = Field(description="Empty for the first status")
    status: str
    episode_id: str
    evaluated_on: str
    rule_id: str
    message: str


class TransitionPage(BaseModel):
    items: list[TransitionRow]
    next_after: str | None = Field(description="Pass as `after` for the next page; null at the end")


@router.get(
    "/measures/{measure_id}/status",
    summary="A measure's computed status (its worst child) beside its self-assessment",
    responses={200: {"model": MeasureStatusOut}, **problem_responses(NotFound)},
)
async def measure_status(measure_id: str, q: Queries, store: Catalogue) -> dict[str, Any]:
    if await store.measure(measure_id) is None:
        raise NotFound(f"no measure {measure_id!r} in the catalogue")
    rollup = await q.measure_rollup(measure_id)
    return {**rollup.model_dump(mode="json"), "divergence_flag": rollup.divergence_flag}


@router.get(
    "/ministries/{code}/scorecard",
    summary="Counts of a ministry's KPIs and milestones by status, and divergent measures",
    responses={200: {"model": Scorecard}},
)
async def scorecard(code: str, q: Queries) -> dict[str, Any]:
    card = await q.scorecard(code)
    return card.model_dump(mode="json")


def _export_row(doc: dict[str, Any]) -> dict[str, Any]:
    event = doc["event"]
    data = event["data"]
    explanation = data.get("explanation") or {}
    return {
        "event_id": event["id"],
        "time": event["time"],
        "kpi_id": data["kpi_id"],
        "kind": data["kind"],
        "measure_id": data["measure_id"],
        "ministries": " ".join(data.get("ministries", [])),
        "previous_status": data.get("previous_status") or "",
        "status": data["status"],
        "episode_id": data.get("episode_id") or "",
        "evaluated_on": data["evaluated_on"],
        "rule_id": explanation.get("rule_id", ""),
        "message": explanation.get("message", ""),
    }


@router.get(
    "/exports/transitions",
    summary="Open data: every status transition, as JSON or CSV, paged by `after`",
    responses={
        200: {
            "model": TransitionPage,
            "content": {"text/csv": {"schema": {"type": "string"}}},
            "headers": {
                "X-Next-After": {
                    "description": "CSV: `after` for the next page; absent at the end",
                    "schema": {"type": "string"},
                }
            },
        },
        **problem_responses(ValidationProblem),
    },
)
async def export_transitions(
    repo: Repository,
    format: Annotated[Literal["json", "csv"], Query()] = "json",
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
    after: Annotated[str | None, Query(description="Continue after this event id")] = None,
) -> Response:
    rows = [_export_row(doc) for doc in await repo.transitions(limit, after)]
    next_after = rows[-1]["event_id"] if len(rows) == limit else None
    if format == "csv":
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=EXPORT_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
        headers = {"X-Next-After": next_after} if next_after else {}
        return Response(buffer.getvalue(), media_type="text/csv; charset=utf-8", headers=headers)
    return JSONResponse({"items": rows, "next_after": next_after})

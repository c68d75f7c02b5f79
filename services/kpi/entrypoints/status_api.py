"""Status views of the kpi service: measure rollups, ministry scorecards, open-data export."""

from __future__ import annotations

import csv
import io
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse, Response

from services.kpi.entrypoints.deps import Queries, Repository
from shared.http.problems import NotFound, problem_responses

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


@router.get(
    "/measures/{measure_id}/status",
    summary="A measure's computed status (its worst child) beside its self-assessment",
    responses=problem_responses(NotFound),
)
async def measure_status(measure_id: str, q: Queries) -> dict[str, Any]:
    if await q.catalogue.measure(measure_id) is None:
        raise NotFound(f"no measure {measure_id!r} in the catalogue")
    rollup = await q.measure_rollup(measure_id)
    return {**rollup.model_dump(mode="json"), "divergence_flag": rollup.divergence_flag}


@router.get(
    "/ministries/{code}/scorecard",
    summary="Counts of a ministry's KPIs and milestones by status, and divergent measures",
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
    responses={200: {"content": {"text/csv": {}, "application/json": {}}}},
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

"""Query API of the kpi service."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request

from services.kpi.adapters.repository import KpiRepository
from shared.catalogue_store import CatalogueStore
from shared.http.problems import NotFound, problem_responses


def repository(request: Request) -> KpiRepository:
    repo: KpiRepository = request.app.state.kpi_repository
    return repo


def catalogue(request: Request) -> CatalogueStore:
    store: CatalogueStore = request.app.state.catalogue
    return store


Repository = Annotated[KpiRepository, Depends(repository)]
Catalogue = Annotated[CatalogueStore, Depends(catalogue)]
router = APIRouter(prefix="/v1", tags=["kpis"])


@router.get(
    "/kpis/{kpi_id}",
    summary="A KPI's or milestone's current status and explanation",
    responses=problem_responses(NotFound),
)
async def get_kpi(kpi_id: str, repo: Repository, store: Catalogue) -> dict[str, Any]:
    item = await store.item(kpi_id)
    if item is None:
        raise NotFound(f"no KPI or milestone {kpi_id!r} in the catalogue")
    state = await repo.state(kpi_id)
    evaluation = state["evaluation"] if state else None
    observations = await repo.observations(kpi_id)
    return {
        "id": kpi_id,
        "kind": item.get("kind"),
        "measure_id": item.get("measure_id"),
        "name_ja": item.get("name_ja"),
        "name_en": item.get("name_en"),
        "ministries": item.get("ministries", []),
        "status": state["status"] if state else "no_data",
        "evaluation": evaluation,
        "episode": state["episode"] if state else None,
        "observations": [
            {"event_id": o["event_id"], "as_of": o["as_of"], "data": o["data"]}
            for o in observations
        ],
    }

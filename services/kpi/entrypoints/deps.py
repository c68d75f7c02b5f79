"""The kpi service's route dependencies, declared once (built in bootstrap's lifespan)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request
from pymongo.asynchronous.database import AsyncDatabase

from services.kpi.adapters.repository import KpiRepository
from services.kpi.queries import KpiQueries
from shared.catalogue_store import CatalogueStore


def _repository(request: Request) -> KpiRepository:
    value: KpiRepository = request.app.state.kpi_repository
    return value


def _catalogue(request: Request) -> CatalogueStore:
    value: CatalogueStore = request.app.state.catalogue
    return value


def _database(request: Request) -> AsyncDatabase[dict[str, Any]]:
    store: CatalogueStore = request.app.state.catalogue
    return store.database


def _queries(request: Request) -> KpiQueries:
    value: KpiQueries = request.app.state.kpi_queries
    return value


Repository = Annotated[KpiRepository, Depends(_repository)]
Catalogue = Annotated[CatalogueStore, Depends(_catalogue)]
Database = Annotated[AsyncDatabase[dict[str, Any]], Depends(_database)]
Queries = Annotated[KpiQueries, Depends(_queries)]

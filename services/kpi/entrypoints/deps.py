"""The kpi service's route dependencies, declared once (built in bootstrap's lifespan)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Annotated, Any

from fastapi import Depends, Request

from services.kpi.adapters.catalogue_reads import CatalogueReads
from services.kpi.adapters.repository import KpiRepository
from services.kpi.entrypoints.limits import ReadLimiter, SingleFlight
from services.kpi.service.queries import KpiQueries
from shared.catalogue_store import CatalogueStore


@dataclass(frozen=True)
class HistoryReadLimits:
    """How much of a subject's history one request may read, and how many such reads at once."""

    reads: ReadLimiter
    observations_shown: int = 1000
    # Sent with a 503 when a read used up its time bound on the database.
    retry_after_s: int = 2
    # Identical concurrent reads (same subject and as_of) share one.
    flights: SingleFlight[tuple[str, date | None], Any] = field(default_factory=SingleFlight)


def _repository(request: Request) -> KpiRepository:
    value: KpiRepository = request.app.state.kpi_repository
    return value


def _catalogue(request: Request) -> CatalogueStore:
    value: CatalogueStore = request.app.state.catalogue
    return value


def _catalogue_reads(request: Request) -> CatalogueReads:
    store: CatalogueStore = request.app.state.catalogue
    return CatalogueReads(store.database)


def _queries(request: Request) -> KpiQueries:
    value: KpiQueries = request.app.state.kpi_queries
    return value


def _history_reads(request: Request) -> HistoryReadLimits:
    value: HistoryReadLimits = request.app.state.history_reads
    return value


Repository = Annotated[KpiRepository, Depends(_repository)]
Catalogue = Annotated[CatalogueStore, Depends(_catalogue)]
Reads = Annotated[CatalogueReads, Depends(_catalogue_reads)]
Queries = Annotated[KpiQueries, Depends(_queries)]
HistoryReads = Annotated[HistoryReadLimits, Depends(_history_reads)]

"""The in-memory adapters (and the BSON state cache, which needs no server) pass the same
contracts as the MongoDB adapters (tests/support/contracts/kpi.py)."""

from __future__ import annotations

import pytest

from services.kpi.adapters.catalogue import catalogue_entry, measure_entry
from services.kpi.adapters.memory import (
    MemoryCatalogue,
    MemoryDivergenceStore,
    MemoryKpiRepository,
    MemoryOwnershipLedger,
    MemoryStateCache,
)
from services.kpi.adapters.state_cache import BsonStateCache
from tests.support.contracts.kpi import (
    CATALOGUE_ITEMS,
    CATALOGUE_MEASURES,
    CatalogueContract,
    DivergenceStoreContract,
    EventStoreContract,
    LedgerAndCatalogue,
    OwnershipLedgerContract,
    StateCacheContract,
    StateRepositoryContract,
)


class TestMemoryStateCache(StateCacheContract):
    @pytest.fixture
    def state_cache(self) -> MemoryStateCache:
        return MemoryStateCache()


class TestBsonStateCache(StateCacheContract):
    @pytest.fixture
    def state_cache(self) -> BsonStateCache:
        return BsonStateCache()


class TestMemoryStateRepository(StateRepositoryContract):
    @pytest.fixture
    def state_repository(self) -> MemoryKpiRepository:
        return MemoryKpiRepository()


class TestMemoryEventStore(EventStoreContract):
    @pytest.fixture
    def event_store(self) -> MemoryKpiRepository:
        return MemoryKpiRepository()


class TestMemoryDivergenceStore(DivergenceStoreContract):
    @pytest.fixture
    def divergence_store(self) -> MemoryDivergenceStore:
        return MemoryDivergenceStore()


def memory_catalogue() -> MemoryCatalogue:
    return MemoryCatalogue(
        [catalogue_entry(item) for item in CATALOGUE_ITEMS],
        {m["_id"]: measure_entry(m) for m in CATALOGUE_MEASURES},
    )


class TestMemoryCatalogue(CatalogueContract):
    @pytest.fixture
    def catalogue(self) -> MemoryCatalogue:
        return memory_catalogue()


class TestMemoryOwnershipLedger(OwnershipLedgerContract):
    @pytest.fixture
    def ownership_ledger(self) -> LedgerAndCatalogue:
        catalogue = memory_catalogue()
        return LedgerAndCatalogue(MemoryOwnershipLedger(catalogue), catalogue)

"""The in-memory adapters (and the BSON state cache, which needs no server) pass the same
contracts as the MongoDB adapters (tests/support/contracts/kpi.py)."""

from __future__ import annotations

import pytest

from services.kpi.adapters.memory import (
    MemoryDivergenceStore,
    MemoryKpiRepository,
    MemoryStateCache,
)
from services.kpi.adapters.state_cache import BsonStateCache
from tests.support.contracts.kpi import (
    DivergenceStoreContract,
    EventStoreContract,
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

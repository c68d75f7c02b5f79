"""The kpi service's MongoDB adapters pass the contracts of their ports on the real FerretDB
(tests/support/contracts/kpi.py), as the in-memory ones do in the unit tier."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from typing import Any

import pytest
from pymongo.asynchronous.database import AsyncDatabase

from services.kpi.adapters.divergences import MongoDivergenceStore
from services.kpi.adapters.repository import KpiRepository, ensure_indexes
from shared.mongo import MongoClient
from tests.support.contracts.kpi import (
    DivergenceStoreContract,
    EventStoreContract,
    StateRepositoryContract,
)

pytestmark = pytest.mark.integration


@pytest.fixture
async def database(mongo: MongoClient) -> AsyncIterator[AsyncDatabase[dict[str, Any]]]:
    name = f"kpi_contract_{secrets.token_hex(4)}"
    db = mongo[name]
    await ensure_indexes(db)
    yield db
    await mongo.drop_database(name)


class TestMongoStateRepository(StateRepositoryContract):
    @pytest.fixture
    def state_repository(self, database: AsyncDatabase[dict[str, Any]]) -> KpiRepository:
        return KpiRepository(database)


class TestMongoEventStore(EventStoreContract):
    @pytest.fixture
    def event_store(self, database: AsyncDatabase[dict[str, Any]]) -> KpiRepository:
        return KpiRepository(database)


class TestMongoDivergenceStore(DivergenceStoreContract):
    @pytest.fixture
    def divergence_store(self, database: AsyncDatabase[dict[str, Any]]) -> MongoDivergenceStore:
        return MongoDivergenceStore(database)

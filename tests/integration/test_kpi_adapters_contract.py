"""The kpi service's MongoDB adapters pass the contracts of their ports on the real FerretDB
(tests/support/contracts/kpi.py), as the in-memory ones do in the unit tier."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from typing import Any

import pytest
from pymongo.asynchronous.database import AsyncDatabase

from services.kpi.adapters.catalogue import MongoCatalogue
from services.kpi.adapters.divergences import MongoDivergenceStore
from services.kpi.adapters.ownership import MongoOwnershipLedger
from services.kpi.adapters.repository import KpiRepository, ensure_indexes
from shared.catalogue.overrides import OwnershipStore
from shared.catalogue_store import MEASURES, CatalogueStore
from shared.mongo import MongoClient
from tests.support.contracts.kpi import (
    CATALOGUE_ITEMS,
    CATALOGUE_MEASURES,
    CatalogueContract,
    DivergenceStoreContract,
    EventStoreContract,
    LedgerAndCatalogue,
    OwnershipLedgerContract,
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


async def mongo_catalogue(mongo: MongoClient, db: AsyncDatabase[dict[str, Any]]) -> MongoCatalogue:
    store = CatalogueStore(mongo, db.name)
    for item in CATALOGUE_ITEMS:
        await store.upsert_item(item)
    await db[MEASURES].insert_many([dict(m) for m in CATALOGUE_MEASURES])
    return MongoCatalogue(store)


class TestMongoCatalogue(CatalogueContract):
    @pytest.fixture
    async def catalogue(
        self, mongo: MongoClient, database: AsyncDatabase[dict[str, Any]]
    ) -> MongoCatalogue:
        return await mongo_catalogue(mongo, database)


class TestMongoOwnershipLedger(OwnershipLedgerContract):
    @pytest.fixture
    async def ownership_ledger(
        self, mongo: MongoClient, database: AsyncDatabase[dict[str, Any]]
    ) -> LedgerAndCatalogue:
        catalogue = await mongo_catalogue(mongo, database)
        return LedgerAndCatalogue(MongoOwnershipLedger(OwnershipStore(database)), catalogue)

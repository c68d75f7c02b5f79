"""Ingest's MongoDB (FerretDB) and Kafka adapters pass the contracts of their ports
(tests/support/contracts/ingest.py), the same the in-memory adapters pass in the unit tier."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator

import pytest

from services.ingest.adapters.catalogue import CachedCatalogue
from services.ingest.adapters.keys import ApiKeyStore
from services.ingest.adapters.ownership import MongoOwnershipRecords
from services.ingest.adapters.publisher import KafkaEventPublisher
from services.ingest.adapters.receipts import ReceiptStore
from shared.catalogue.overrides import OwnershipStore
from shared.catalogue_store import ITEMS, MEASURES
from shared.kafka import create_producer
from shared.mongo import MongoClient
from shared.settings import KafkaSettings, MongoSettings, TopicSettings
from tests.support.contracts.ingest import (
    ITEM_DOCUMENTS,
    MEASURE_DOCUMENTS,
    OTHER_BY,
    OTHER_ITEM,
    OWNED_BY,
    OWNED_ITEM,
    TAKEOVER,
    CatalogueContract,
    EventPublisherContract,
    KeyStoreContract,
    OwnershipRecordsContract,
    ReceiptStoreContract,
)

pytestmark = pytest.mark.integration


@pytest.fixture
async def database(mongo: MongoClient, mongo_config: MongoSettings) -> AsyncIterator[str]:
    """A database of the test's own."""
    name = f"{mongo_config.database}_contract_{secrets.token_hex(3)}"
    yield name
    await mongo.drop_database(name)


class TestMongoReceiptStore(ReceiptStoreContract):
    @pytest.fixture
    async def receipt_store(self, mongo: MongoClient, database: str) -> AsyncIterator[ReceiptStore]:
        async with ReceiptStore(mongo, database, takeover_after=TAKEOVER) as store:
            yield store


class TestMongoKeyStore(KeyStoreContract):
    @pytest.fixture
    def key_store(self, mongo: MongoClient, database: str) -> ApiKeyStore:
        return ApiKeyStore(mongo, database)


class TestMongoCatalogue(CatalogueContract):
    @pytest.fixture(params=[5.0, 0.0], ids=["snapshot", "direct"])
    async def catalogue(
        self, mongo: MongoClient, database: str, request: pytest.FixtureRequest
    ) -> CachedCatalogue:
        await mongo[database][ITEMS].insert_many(ITEM_DOCUMENTS)
        await mongo[database][MEASURES].insert_many(MEASURE_DOCUMENTS)
        ttl_s: float = request.param
        return CachedCatalogue(mongo, database, ttl_s)


class TestKafkaEventPublisher(EventPublisherContract):
    @pytest.fixture
    async def event_publisher(
        self, kafka: KafkaSettings, topics: TopicSettings
    ) -> AsyncIterator[KafkaEventPublisher]:
        producer = create_producer(kafka, client_suffix="ingest")
        await producer.start()
        try:
            yield KafkaEventPublisher(producer, topics.events, kafka.delivery_timeout_s)
        finally:
            await producer.stop()


class TestMongoOwnershipRecords(OwnershipRecordsContract):
    @pytest.fixture
    async def ownership_records(self, mongo: MongoClient, database: str) -> MongoOwnershipRecords:
        await mongo[database][ITEMS].insert_many(
            [
                {"_id": item, "kind": "kpi", "unit": "%", "ministries": [owner]}
                for item, owner in ((OWNED_ITEM, OWNED_BY), (OTHER_ITEM, OTHER_BY))
            ]
        )
        records = MongoOwnershipRecords(OwnershipStore(mongo[database]))
        await records.ensure_indexes()
        return records

"""The in-memory adapters pass the same contracts as the MongoDB and Kafka ones
(tests/support/contracts/ingest.py; the real ones run in
tests/integration/test_ingest_adapters_contract.py)."""

from __future__ import annotations

import pytest

from services.ingest.adapters.memory import (
    MemoryCatalogue,
    MemoryEventPublisher,
    MemoryKeyStore,
    MemoryOwnershipRecords,
    MemoryReceiptStore,
)
from services.ingest.ports import CatalogueEntry
from shared.events.validation import ItemFacts
from tests.support.contracts.ingest import (
    ITEM_ENTRIES,
    MEASURE_ENTRIES,
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


class TestMemoryReceiptStore(ReceiptStoreContract):
    @pytest.fixture
    def receipt_store(self) -> MemoryReceiptStore:
        return MemoryReceiptStore(takeover_after=TAKEOVER)


class TestMemoryKeyStore(KeyStoreContract):
    @pytest.fixture
    def key_store(self) -> MemoryKeyStore:
        return MemoryKeyStore()


class TestMemoryCatalogue(CatalogueContract):
    @pytest.fixture
    def catalogue(self) -> MemoryCatalogue:
        return MemoryCatalogue(dict(ITEM_ENTRIES), dict(MEASURE_ENTRIES))


class TestMemoryEventPublisher(EventPublisherContract):
    @pytest.fixture
    def event_publisher(self) -> MemoryEventPublisher:
        return MemoryEventPublisher()


class TestMemoryOwnershipRecords(OwnershipRecordsContract):
    @pytest.fixture
    def ownership_records(self) -> MemoryOwnershipRecords:
        entries = {
            item: CatalogueEntry(ItemFacts(item, "kpi", "%"), frozenset({owner}))
            for item, owner in ((OWNED_ITEM, OWNED_BY), (OTHER_ITEM, OTHER_BY))
        }
        return MemoryOwnershipRecords(MemoryCatalogue(entries))

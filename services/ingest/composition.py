"""The one composition root of ingest: the use cases wired to their ports, without FastAPI.

`bootstrap.create_app` builds the service from here in its lifespan (MongoDB and Kafka
adapters), the unit tests with the in-memory adapters (adapters/memory.py); both get the same
graph, so what a unit test exercises is what the service runs.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import timedelta

from aiokafka import AIOKafkaProducer

from services.ingest.adapters.catalogue import CachedCatalogue
from services.ingest.adapters.indexes import ensure_indexes
from services.ingest.adapters.keys import ApiKeyStore, KeyCache
from services.ingest.adapters.ownership import MongoOwnershipRecords
from services.ingest.adapters.publisher import KafkaEventPublisher
from services.ingest.adapters.receipts import ReceiptStore as MongoReceiptStore
from services.ingest.metrics import IngestMetrics
from services.ingest.ports import (
    Catalogue,
    EventPublisher,
    KeyLookup,
    KeyStore,
    OwnershipRecords,
    ReceiptStore,
)
from services.ingest.service.authentication import KeyAuthenticator
from services.ingest.service.key_administration import KeyAdmin
from services.ingest.service.ownership_administration import OwnershipAdmin
from services.ingest.service.ownership_propagation import OwnershipPropagator
from services.ingest.service.rate_limiting import RateLimiter
from services.ingest.service.submission import IngestHandler
from services.ingest.settings import IngestSettings
from shared.catalogue.overrides import OwnershipStore
from shared.clock import Clock
from shared.events.validation import Rules
from shared.mongo import MongoClient


def _always() -> bool:
    return True


@dataclass(frozen=True)
class IngestAdapters:
    """An implementation of every port ingest's use cases need."""

    catalogue: Catalogue
    receipts: ReceiptStore
    publisher: EventPublisher
    keys: KeyStore
    key_lookup: KeyLookup
    ownership: OwnershipRecords
    # False once a background part of an adapter died (readiness shows it).
    alive: Callable[[], bool] = field(default=_always)


@dataclass(frozen=True)
class IngestService:
    """The handler graph: what the routes and the background tasks call."""

    submission: IngestHandler
    authenticator: KeyAuthenticator
    key_admin: KeyAdmin
    ownership_admin: OwnershipAdmin
    propagator: OwnershipPropagator
    rate_limiter: RateLimiter


def build_service(
    settings: IngestSettings,
    adapters: IngestAdapters,
    *,
    clock: Clock,
    metrics: IngestMetrics,
    monotonic: Callable[[], float] = time.monotonic,
) -> IngestService:
    propagator = OwnershipPropagator(adapters.ownership, adapters.publisher, clock)
    return IngestService(
        submission=IngestHandler(
            catalogue=adapters.catalogue,
            receipts=adapters.receipts,
            publisher=adapters.publisher,
            metrics=metrics,
            clock=clock,
            max_record_bytes=settings.limits.max_event_bytes,
            rules=Rules(time_ahead=timedelta(seconds=settings.max_time_ahead_s)),
        ),
        authenticator=KeyAuthenticator(adapters.key_lookup),
        key_admin=KeyAdmin(adapters.keys, adapters.key_lookup, clock),
        ownership_admin=OwnershipAdmin(adapters.ownership, adapters.catalogue, clock, propagator),
        propagator=propagator,
        rate_limiter=RateLimiter(
            settings.rate_limit.events_per_s, settings.rate_limit.burst, monotonic
        ),
    )


@asynccontextmanager
async def mongo_kafka_adapters(
    settings: IngestSettings, mongo: MongoClient, producer: AIOKafkaProducer
) -> AsyncIterator[IngestAdapters]:
    """The real adapters on started clients; the receipt store's group-commit tasks run until
    the block exits. Indexes are made first."""
    database = settings.mongo.database
    await ensure_indexes(mongo[database])
    ownership = MongoOwnershipRecords(OwnershipStore(mongo[database]))
    await ownership.ensure_indexes()
    key_store = ApiKeyStore(mongo, database)
    receipts = MongoReceiptStore(
        mongo, database, takeover_after=timedelta(seconds=settings.takeover_after_s)
    )
    async with receipts:
        yield IngestAdapters(
            catalogue=CachedCatalogue(mongo, database, settings.catalogue_cache_ttl_s),
            receipts=receipts,
            publisher=KafkaEventPublisher(
                producer, settings.topics.events, settings.kafka.delivery_timeout_s
            ),
            keys=key_store,
            key_lookup=KeyCache(key_store, settings.key_cache_ttl_s),
            ownership=ownership,
            alive=lambda: receipts.alive,
        )

"""Composition root of the ingest service: settings → clients → adapters → handlers → app."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime, timedelta

from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from services.ingest.adapters.catalogue import CachedCatalogue
from services.ingest.adapters.indexes import ensure_indexes
from services.ingest.adapters.keys import ApiKeyStore, KeyCache
from services.ingest.adapters.publisher import KafkaEventPublisher
from services.ingest.adapters.receipts import ReceiptStore
from services.ingest.entrypoints import admin, openapi
from services.ingest.entrypoints.api import create_router
from services.ingest.handlers import (
    IngestHandler,
    KeyAdmin,
    KeyAuthenticator,
    OwnershipAdmin,
    RateLimiter,
)
from services.ingest.metrics import IngestMetrics
from services.ingest.ownership_sync import OwnershipPropagator
from services.ingest.settings import IngestSettings
from shared.catalogue.overrides import OwnershipStore
from shared.clock import utc_now
from shared.events.validation import Rules
from shared.http.app import create_service_app
from shared.kafka import create_producer, kafka_reachable
from shared.logs import configure_logging, get_logger
from shared.mongo import create_mongo_client, mongo_reachable
from shared.tasks import TaskGroup, run_periodically

log = get_logger(__name__)


async def _true_if(condition: bool) -> bool:
    return condition


def create_app(
    settings: IngestSettings | None = None, *, clock: Callable[[], datetime] = utc_now
) -> FastAPI:
    settings = settings or IngestSettings()
    configure_logging("ingest", level=settings.log_level, json=settings.log_json)
    registry = CollectorRegistry()
    metrics = IngestMetrics.create(registry)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        producer = create_producer(settings.kafka, client_suffix="ingest")
        mongo = create_mongo_client(settings.mongo, app_name="shinchoku-ingest")
        tasks = TaskGroup()
        receipts = ReceiptStore(
            mongo,
            settings.mongo.database,
            takeover_after=timedelta(seconds=settings.takeover_after_s),
        )
        try:
            await producer.start()
            database = settings.mongo.database
            await ensure_indexes(mongo[database])
            await receipts.__aenter__()
            key_store = ApiKeyStore(mongo, database)
            key_cache = KeyCache(key_store, settings.key_cache_ttl_s)
            app.state.ingest_settings = settings
            app.state.ingest_metrics = metrics
            app.state.authenticator = KeyAuthenticator(key_cache)
            app.state.key_admin = KeyAdmin(key_store, key_cache, clock)
            app.state.rate_limiter = RateLimiter(
                settings.rate_limit.events_per_s, settings.rate_limit.burst
            )
            catalogue = CachedCatalogue(mongo, database, settings.catalogue_cache_ttl_s)
            ownership = OwnershipStore(mongo[database])
            await ownership.ensure_indexes()
            publisher = KafkaEventPublisher(
                producer, settings.topics.events, settings.kafka.delivery_timeout_s
            )
            propagator = OwnershipPropagator(ownership, publisher, clock)
            app.state.ownership_admin = OwnershipAdmin(ownership, catalogue, clock, propagator)
            # At start (changes left unpublished, or recorded before propagation existed) and
            # then periodically (a failed publish, changes made with the CLI).
            tasks.start(
                "ownership_publisher",
                run_periodically(propagator.round, idle_s=settings.ownership_publish_interval_s),
            )
            app.state.ingest_handler = IngestHandler(
                catalogue=catalogue,
                receipts=receipts,
                publisher=publisher,
                metrics=metrics,
                clock=clock,
                max_record_bytes=settings.limits.max_event_bytes,
                rules=Rules(time_ahead=timedelta(seconds=settings.max_time_ahead_s)),
            )
            timeout = settings.readiness_timeout_s
            app.state.readiness = {
                "kafka": lambda: kafka_reachable(producer, timeout),
                "mongo": lambda: mongo_reachable(mongo, timeout),
                "receipts": lambda: _true_if(receipts.alive),
            }
            app.state.admin_token = (
                settings.admin_token.get_secret_value() if settings.admin_token else None
            )
            yield
        finally:
            await tasks.stop()
            await receipts.__aexit__(None, None, None)
            await producer.stop()
            await mongo.close()

    app = create_service_app(
        service="ingest",
        title="Shinchoku ingest",
        description="The ministries' front door: CloudEvents 1.0 over HTTP (structured, binary "
        "and batch modes), authenticated by ministry API keys, validated against the catalogue, "
        "deduplicated by source + id, and published to Kafka (CloudEvents Kafka binding, "
        "structured mode, record key = the KPI, milestone or measure id). See "
        "services/ingest/README.md and docs/contracts/.",
        lifespan=lifespan,
        registry=registry,
        routers=[create_router(settings.limits), admin.router, admin.ownership_router],
        readiness_timeout_s=settings.readiness_timeout_s + 0.5,
        tags=[
            {"name": "events", "description": "Ministries' CloudEvents: single and batch."},
            {"name": "admin", "description": "Ministry API keys (admin token)."},
        ],
    )
    openapi.install(app)
    return app

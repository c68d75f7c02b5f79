"""Composition root of the ingest service: settings → clients → adapters → handler → app."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime

from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from services.ingest.adapters.publisher import KafkaEventPublisher
from services.ingest.adapters.receipts import ReceiptStore
from services.ingest.entrypoints.api import router
from services.ingest.handlers import IngestHandler, IngestMetrics
from services.ingest.settings import IngestSettings
from shared.catalogue_store import CatalogueStore
from shared.http.app import create_service_app
from shared.kafka import create_producer, kafka_reachable
from shared.logs import configure_logging
from shared.mongo import create_mongo_client, mongo_reachable


def utc_now() -> datetime:
    return datetime.now(UTC)


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
        await producer.start()
        try:
            app.state.ingest_handler = IngestHandler(
                catalogue=CatalogueStore(mongo, settings.mongo.database),
                receipts=ReceiptStore(mongo, settings.mongo.database),
                publisher=KafkaEventPublisher(
                    producer, settings.topics.events, settings.kafka.delivery_timeout_s
                ),
                metrics=metrics,
                clock=clock,
            )
            timeout = settings.readiness_timeout_s
            app.state.readiness = {
                "kafka": lambda: kafka_reachable(producer, timeout),
                "mongo": lambda: mongo_reachable(mongo, timeout),
            }
            app.state.admin_token = (
                settings.admin_token.get_secret_value() if settings.admin_token else None
            )
            yield
        finally:
            await producer.stop()
            await mongo.close()

    return create_service_app(
        service="ingest",
        title="Shinchoku ingest",
        description="The ministries' front door: CloudEvents over HTTP, validated and published.",
        lifespan=lifespan,
        registry=registry,
        routers=[router],
        readiness_timeout_s=settings.readiness_timeout_s + 0.5,
    )

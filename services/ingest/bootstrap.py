"""The ingest application: settings → clients → the composition root (composition.py) → app."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from services.ingest.composition import build_service, mongo_kafka_adapters
from services.ingest.entrypoints import admin, openapi
from services.ingest.entrypoints.api import create_router
from services.ingest.entrypoints.problems import add_service_error_handlers
from services.ingest.metrics import IngestMetrics
from services.ingest.settings import IngestSettings
from shared.clock import Clock, utc_now
from shared.http.app import create_service_app
from shared.kafka import create_producer, kafka_reachable
from shared.logs import configure_logging, get_logger
from shared.mongo import create_mongo_client, mongo_reachable
from shared.tasks import TaskGroup, run_periodically

log = get_logger(__name__)


async def _true_if(condition: bool) -> bool:
    return condition


def create_app(settings: IngestSettings | None = None, *, clock: Clock = utc_now) -> FastAPI:
    settings = settings or IngestSettings()
    configure_logging("ingest", level=settings.log_level, json=settings.log_json)
    registry = CollectorRegistry()
    metrics = IngestMetrics.create(registry)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        producer = create_producer(settings.kafka, client_suffix="ingest")
        mongo = create_mongo_client(settings.mongo, app_name="shinchoku-ingest")
        tasks = TaskGroup()
        try:
            await producer.start()
            async with mongo_kafka_adapters(settings, mongo, producer) as adapters:
                service = build_service(settings, adapters, clock=clock, metrics=metrics)
                app.state.ingest_settings = settings
                app.state.ingest_metrics = metrics
                app.state.ingest = service
                timeout = settings.readiness_timeout_s
                app.state.readiness = {
                    "kafka": lambda: kafka_reachable(producer, timeout),
                    "mongo": lambda: mongo_reachable(mongo, timeout),
                    "receipts": lambda: _true_if(adapters.alive()),
                }
                app.state.admin_token = (
                    settings.admin_token.get_secret_value() if settings.admin_token else None
                )
                # At start (changes left unpublished, or recorded before propagation existed)
                # and then periodically (a failed publish, changes made with the CLI). Stopped
                # before the adapters close.
                tasks.start(
                    "ownership_publisher",
                    run_periodically(
                        service.propagator.round, idle_s=settings.ownership_publish_interval_s
                    ),
                )
                try:
                    yield
                finally:
                    await tasks.stop()
        finally:
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
    add_service_error_handlers(app)
    openapi.install(app)
    return app

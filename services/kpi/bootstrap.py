"""Composition root of the kpi service."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime

from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from services.kpi.adapters.repository import KpiRepository, ensure_indexes
from services.kpi.adapters.status_publisher import StatusPublisher
from services.kpi.composition import EVENT_TYPES, ORDERED_TYPES, build_kpi, mongo_adapters
from services.kpi.entrypoints.api import router
from services.kpi.entrypoints.catalogue_api import router as catalogue_router
from services.kpi.entrypoints.deps import HistoryReadLimits
from services.kpi.entrypoints.limits import ReadLimiter
from services.kpi.entrypoints.status_api import router as status_router
from services.kpi.metrics import KpiMetrics
from services.kpi.settings import KpiSettings
from shared.catalogue_store import CatalogueStore
from shared.clock import offset_clock, utc_now
from shared.consumer import ConsumerHealth, run_consumer
from shared.http.app import create_service_app
from shared.kafka import create_producer, kafka_reachable
from shared.logs import configure_logging
from shared.metrics import ConsumerMetrics
from shared.mongo import create_mongo_client, mongo_reachable
from shared.partitions import PartitionOwnership
from shared.tasks import TaskGroup, run_periodically


def create_app(
    settings: KpiSettings | None = None, *, clock: Callable[[], datetime] = utc_now
) -> FastAPI:
    settings = settings or KpiSettings()
    if clock is utc_now and (settings.clock_offset_days or settings.clock_rate != 1.0):
        clock = offset_clock(
            settings.clock_offset_days, rate=settings.clock_rate, start=settings.clock_start
        )
    configure_logging("kpi", level=settings.log_level, json=settings.log_json)
    registry = CollectorRegistry()
    metrics = KpiMetrics.create(registry)
    consumer_metrics = ConsumerMetrics.create("kpi", registry)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        mongo = create_mongo_client(settings.mongo, app_name="shinchoku-kpi")
        producer = create_producer(settings.kafka, client_suffix="kpi")
        tasks = TaskGroup()
        try:
            db = mongo[settings.mongo.database]
            await ensure_indexes(db)
            await producer.start()
            catalogue = CatalogueStore(mongo, settings.mongo.database)
            # The consumer's partitions decide which KPIs this instance writes (and sweeps);
            # status changes stored but not acknowledged before a crash go out when the
            # handler loads the states of newly assigned partitions.
            ownership = PartitionOwnership(settings.topics.events)
            consumer_health = ConsumerHealth()
            kpi = build_kpi(
                mongo_adapters(db, catalogue, StatusPublisher(producer, settings.topics.status)),
                metrics=metrics,
                clock=clock,
                ownership=ownership,
                settings=settings,
            )
            tasks.start(
                "consumer",
                run_consumer(
                    settings=settings,
                    topic=settings.topics.events,
                    group_id=settings.consumer_group,
                    event_types=EVENT_TYPES,
                    handlers=kpi.handlers(),
                    ordered_types=ORDERED_TYPES,
                    metrics=consumer_metrics,
                    dead_letter_producer=producer,
                    service="kpi",
                    ownership=ownership,
                    health=consumer_health,
                ),
            )

            async def sweep_once() -> bool:
                await kpi.sweep.sweep()
                return False

            tasks.start("sweep", run_periodically(sweep_once, idle_s=settings.sweep_interval_s))
            app.state.kpi_repository = KpiRepository(db)
            app.state.catalogue = catalogue
            app.state.kpi = kpi
            app.state.kpi_queries = kpi.queries
            app.state.history_reads = HistoryReadLimits(
                reads=ReadLimiter(
                    settings.max_concurrent_history_reads, settings.history_read_retry_after_s
                ),
                observations_shown=settings.observations_shown,
                retry_after_s=settings.history_read_retry_after_s,
            )
            app.state.admin_token = (
                settings.admin_token.get_secret_value() if settings.admin_token else None
            )
            consumer_alive = tasks.readiness("consumer")

            async def consumer_ready() -> bool:
                # Alive, and not stuck retrying one failure for longer than it should take.
                return consumer_health.ready() and await consumer_alive()

            timeout = settings.readiness_timeout_s
            app.state.readiness = {
                "kafka": lambda: kafka_reachable(producer, timeout),
                "mongo": lambda: mongo_reachable(mongo, timeout),
                "consumer": consumer_ready,
                "sweep": tasks.readiness("sweep"),
            }
            app.state.readiness_detail = {"consumer": consumer_health.detail}
            yield
        finally:
            await tasks.stop()
            await producer.stop()
            await mongo.close()

    return create_service_app(
        service="kpi",
        title="Shinchoku kpi",
        description="KPI and milestone history and status against the plan's targets.",
        lifespan=lifespan,
        registry=registry,
        routers=[router, status_router, catalogue_router],
        readiness_timeout_s=settings.readiness_timeout_s + 0.5,
        tags=[
            {"name": "kpis", "description": "A KPI's or milestone's status and history."},
            {
                "name": "status",
                "description": "Measures' and ministries' status; open-data exports.",
            },
            {"name": "catalogue", "description": "The plan's ministries, measures and KPIs."},
        ],
    )

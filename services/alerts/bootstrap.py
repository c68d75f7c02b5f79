"""Composition root of the alerts service."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

import httpx
from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from services.alerts.adapters.store import DeliveryQueue, SubscriptionStore, ensure_indexes
from services.alerts.adapters.webhook_sender import WebhookSender
from services.alerts.entrypoints.api import router
from services.alerts.handlers import AlertsMetrics, DeliveryWorker, StatusChangeHandler
from services.alerts.settings import AlertsSettings
from shared.consumer import run_consumer
from shared.events.contracts import STATUS_EVENT_TYPES, KpiStatusChangedEvent
from shared.http.app import create_service_app
from shared.kafka import create_producer, kafka_reachable
from shared.logs import configure_logging
from shared.metrics import ConsumerMetrics
from shared.mongo import create_mongo_client, mongo_reachable
from shared.tasks import TaskGroup, run_periodically


def utc_now() -> datetime:
    return datetime.now(UTC)


def create_app(
    settings: AlertsSettings | None = None, *, clock: Callable[[], datetime] = utc_now
) -> FastAPI:
    settings = settings or AlertsSettings()
    configure_logging("alerts", level=settings.log_level, json=settings.log_json)
    registry = CollectorRegistry()
    metrics = AlertsMetrics.create(registry)
    consumer_metrics = ConsumerMetrics.create("alerts", registry)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        mongo = create_mongo_client(settings.mongo, app_name="shinchoku-alerts")
        producer = create_producer(settings.kafka, client_suffix="alerts-dlq")
        http = httpx.AsyncClient(timeout=settings.delivery_timeout_s, follow_redirects=False)
        tasks = TaskGroup()
        try:
            db = mongo[settings.mongo.database]
            await ensure_indexes(db)
            await producer.start()
            subscriptions = SubscriptionStore(db)
            queue = DeliveryQueue(db)
            wake = asyncio.Event()
            handler = StatusChangeHandler(
                subscriptions=subscriptions,
                queue=queue,
                metrics=metrics,
                api_url=settings.public_api_url,
                clock=clock,
                on_enqueued=wake.set,
            )
            worker = DeliveryWorker(
                subscriptions=subscriptions,
                queue=queue,
                sender=WebhookSender(http),
                metrics=metrics,
                clock=clock,
                owner=f"{socket.gethostname()}:{id(app)}",
                schedule_s=settings.retry_schedule_s,
                lease=timedelta(seconds=settings.lease_s),
            )
            tasks.start(
                "consumer",
                run_consumer(
                    settings=settings,
                    topic=settings.topics.status,
                    group_id=settings.consumer_group,
                    event_types=STATUS_EVENT_TYPES,
                    handlers={KpiStatusChangedEvent.TYPE: handler},
                    metrics=consumer_metrics,
                    dead_letter_producer=producer,
                    service="alerts",
                ),
            )
            tasks.start(
                "delivery_worker",
                run_periodically(worker.deliver_one, idle_s=settings.worker_poll_s, wake=wake),
            )
            app.state.subscription_store = subscriptions
            app.state.delivery_queue = queue
            app.state.clock = clock
            app.state.allowed_target_networks = settings.allowed_target_networks
            app.state.admin_token = (
                settings.admin_token.get_secret_value() if settings.admin_token else None
            )
            timeout = settings.readiness_timeout_s
            app.state.readiness = {
                "kafka": lambda: kafka_reachable(producer, timeout),
                "mongo": lambda: mongo_reachable(mongo, timeout),
                "consumer": tasks.readiness("consumer"),
                "delivery_worker": tasks.readiness("delivery_worker"),
            }
            yield
        finally:
            await tasks.stop()
            await http.aclose()
            await producer.stop()
            await mongo.close()

    return create_service_app(
        service="alerts",
        title="Shinchoku alerts",
        description="Subscriptions and signed, deduplicated, retried webhooks when measures slip.",
        lifespan=lifespan,
        registry=registry,
        routers=[router],
        readiness_timeout_s=settings.readiness_timeout_s + 0.5,
    )

"""Composition root of the alerts service."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from services.alerts.adapters.indexes import ensure_indexes
from services.alerts.adapters.webhook_sender import WebhookSender, guarded_client, resolve
from services.alerts.composition import build_alerts, mongo_stores
from services.alerts.domain.ssrf import Resolver
from services.alerts.entrypoints.api import document_webhooks, router
from services.alerts.entrypoints.errors import add_error_handlers
from services.alerts.metrics import AlertsMetrics
from services.alerts.settings import AlertsSettings
from shared.clock import Clock, utc_now
from shared.consumer import ConsumerHealth, run_consumer
from shared.events.contracts import STATUS_EVENT_TYPES
from shared.http.app import create_service_app
from shared.kafka import create_producer, kafka_reachable
from shared.logs import configure_logging
from shared.metrics import ConsumerMetrics
from shared.mongo import create_mongo_client, mongo_reachable
from shared.tasks import TaskGroup, run_periodically

DESCRIPTION = """\
Subscriptions and signed, deduplicated, grouped, retried **Standard Webhooks** when KPIs and
milestones slip or recover. Every endpoint needs the admin bearer token. The webhook payload is
documented under `webhooks` (`kpi-status`)."""


def create_app(
    settings: AlertsSettings | None = None,
    *,
    clock: Clock = utc_now,
    resolver: Resolver = resolve,
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
        http = guarded_client(
            allowed=settings.allowed_target_networks,
            timeout_s=settings.delivery_timeout_s,
            resolver=resolver,
        )
        tasks = TaskGroup()
        try:
            db = mongo[settings.mongo.database]
            await ensure_indexes(db)
            await producer.start()
            graph = build_alerts(
                settings,
                clock=clock,
                stores=mongo_stores(db),
                sender=WebhookSender(
                    http,
                    deadline_s=settings.delivery_timeout_s,
                    max_response_bytes=settings.max_response_bytes,
                ),
                resolver=resolver,
                metrics=metrics,
            )
            consumer_started = asyncio.Event()
            consumer_health = ConsumerHealth()
            tasks.start(
                "consumer",
                run_consumer(
                    settings=settings,
                    topic=settings.topics.status,
                    group_id=settings.consumer_group,
                    event_types=STATUS_EVENT_TYPES,
                    handlers=graph.handlers,
                    metrics=consumer_metrics,
                    dead_letter_producer=producer,
                    service="alerts",
                    started=consumer_started,
                    health=consumer_health,
                ),
            )
            tasks.start(
                "delivery_worker",
                graph.worker.run(graph.deliveries_due, poll_s=settings.worker_poll_s),
            )
            tasks.start(
                "batcher",
                run_periodically(
                    graph.batcher.tick, idle_s=settings.batcher_poll_s, wake=graph.mutes_ended
                ),
            )
            tasks.start(
                "reminders",
                run_periodically(graph.batcher.remind, idle_s=settings.reminder_check_s),
            )
            tasks.start(
                "gauges",
                run_periodically(graph.gauges.refresh, idle_s=settings.metrics_refresh_s),
            )
            app.state.subscription_admin = graph.subscriptions
            app.state.silence_admin = graph.silences
            app.state.admin_token = (
                settings.admin_token.get_secret_value() if settings.admin_token else None
            )
            consumer_alive = tasks.readiness("consumer")

            async def consumer_ready() -> bool:
                # Ready once the consumer has joined: a change published after /readyz
                # answers 200 is seen; and not stuck retrying one failure.
                return (
                    consumer_started.is_set() and consumer_health.ready() and await consumer_alive()
                )

            timeout = settings.readiness_timeout_s
            app.state.readiness = {
                "kafka": lambda: kafka_reachable(producer, timeout),
                "mongo": lambda: mongo_reachable(mongo, timeout),
                "consumer": consumer_ready,
                "delivery_worker": tasks.readiness("delivery_worker"),
                "batcher": tasks.readiness("batcher"),
            }
            app.state.readiness_detail = {"consumer": consumer_health.detail}
            yield
        finally:
            await tasks.stop()
            await http.aclose()
            await producer.stop()
            await mongo.close()

    app = create_service_app(
        service="alerts",
        title="Shinchoku alerts",
        description=DESCRIPTION,
        lifespan=lifespan,
        registry=registry,
        routers=[router],
        readiness_timeout_s=settings.readiness_timeout_s + 0.5,
        tags=[
            {"name": "subscriptions", "description": "Webhook subscriptions and their secrets."},
            {
                "name": "delivery log",
                "description": "Attempts, deliveries and notifications of a subscription; "
                "redelivery.",
            },
            {"name": "silences", "description": "Muting notifications for a while."},
            {"name": "webhooks", "description": "What a subscriber receives."},
        ],
    )
    add_error_handlers(app)
    document_webhooks(app)
    return app

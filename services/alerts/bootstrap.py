"""Composition root of the alerts service."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime, timedelta

from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from services.alerts.adapters.store import (
    DeliveryQueue,
    KpiStateStore,
    NotificationStore,
    OperatorEvents,
    ReadCache,
    SilenceStore,
    SubscriptionStore,
    ensure_indexes,
)
from services.alerts.adapters.webhook_sender import Resolver, WebhookSender, guarded_client, resolve
from services.alerts.commands import AdminCommands
from services.alerts.entrypoints.api import document_webhooks, router
from services.alerts.handlers import (
    Batcher,
    DeliveryWorker,
    GaugeRefresher,
    Policy,
    StatusChangeHandler,
    Stores,
)
from services.alerts.metrics import AlertsMetrics
from services.alerts.settings import AlertsSettings
from shared.clock import utc_now
from shared.consumer import ConsumerHealth, run_consumer
from shared.events.contracts import (
    STATUS_EVENT_TYPES,
    KpiStatusChangedEvent,
    MeasureDivergenceChangedEvent,
)
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
    clock: Callable[[], datetime] = utc_now,
    resolver: Resolver = resolve,
) -> FastAPI:
    settings = settings or AlertsSettings()
    configure_logging("alerts", level=settings.log_level, json=settings.log_json)
    registry = CollectorRegistry()
    metrics = AlertsMetrics.create(registry)
    consumer_metrics = ConsumerMetrics.create("alerts", registry)
    policy = Policy(
        api_url=settings.public_api_url,
        grouping_window=timedelta(seconds=settings.grouping_window_s),
        max_changes_per_delivery=settings.max_changes_per_delivery,
        reminder_interval=timedelta(seconds=settings.reminder_interval_s),
        claim_recovery=timedelta(seconds=settings.claim_recovery_s),
    )

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
            subscription_store, silence_store = SubscriptionStore(db), SilenceStore(db)
            stores = Stores(
                subscriptions=subscription_store,
                notifications=NotificationStore(db),
                deliveries=DeliveryQueue(db),
                silences=silence_store,
                kpi_states=KpiStateStore(db),
                operator_events=OperatorEvents(db),
                cache=ReadCache(subscription_store, silence_store),
            )
            consumer_started = asyncio.Event()
            consumer_health = ConsumerHealth()
            deliveries_due = asyncio.Event()
            mutes_ended = asyncio.Event()
            batcher = Batcher(
                stores=stores,
                policy=policy,
                metrics=metrics,
                clock=clock,
                on_delivery=deliveries_due.set,
            )
            handler = StatusChangeHandler(
                stores=stores, policy=policy, batcher=batcher, metrics=metrics, clock=clock
            )
            worker = DeliveryWorker(
                stores=stores,
                sender=WebhookSender(
                    http,
                    deadline_s=settings.delivery_timeout_s,
                    max_response_bytes=settings.max_response_bytes,
                ),
                metrics=metrics,
                clock=clock,
                schedule_s=settings.retry_schedule_s,
                lease=timedelta(seconds=settings.effective_lease_s),
                lease_margin=timedelta(seconds=settings.lease_margin_s),
                disable_after=timedelta(seconds=settings.disable_after_failing_s),
                jitter=settings.retry_jitter,
                max_concurrent=settings.max_concurrent_deliveries,
                max_per_subscription=settings.max_concurrent_per_subscription,
            )
            tasks.start(
                "consumer",
                run_consumer(
                    settings=settings,
                    topic=settings.topics.status,
                    group_id=settings.consumer_group,
                    event_types=STATUS_EVENT_TYPES,
                    handlers={
                        KpiStatusChangedEvent.TYPE: handler,
                        MeasureDivergenceChangedEvent.TYPE: handler,
                    },
                    metrics=consumer_metrics,
                    dead_letter_producer=producer,
                    service="alerts",
                    started=consumer_started,
                    health=consumer_health,
                ),
            )
            tasks.start(
                "delivery_worker", worker.run(deliveries_due, poll_s=settings.worker_poll_s)
            )
            tasks.start(
                "batcher",
                run_periodically(batcher.tick, idle_s=settings.batcher_poll_s, wake=mutes_ended),
            )
            tasks.start(
                "reminders", run_periodically(batcher.remind, idle_s=settings.reminder_check_s)
            )
            tasks.start(
                "gauges",
                run_periodically(
                    GaugeRefresher(stores, metrics).refresh, idle_s=settings.metrics_refresh_s
                ),
            )
            app.state.commands = AdminCommands(
                stores=stores,
                clock=clock,
                allowed_networks=settings.allowed_target_networks,
                secret_overlap=timedelta(seconds=settings.secret_overlap_s),
                resolver=resolver,
                wake_worker=deliveries_due.set,
                wake_batcher=mutes_ended.set,
            )
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
    document_webhooks(app)
    return app

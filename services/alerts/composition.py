"""The one composition root of the alerts service: settings, a clock and the adapters in, the
handler graph out (no FastAPI). `bootstrap.create_app` runs it in its lifespan; the tests build
it on FerretDB (`mongo_stores`) or in memory (adapters/memory.py)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import timedelta

from pymongo.asynchronous.database import AsyncDatabase

from services.alerts.adapters.deliveries import (
    MongoDeliveryLeases,
    MongoDeliveryLog,
    MongoDeliveryQueue,
)
from services.alerts.adapters.kpi_states import MongoKpiStates
from services.alerts.adapters.notifications import MongoNotifications
from services.alerts.adapters.operator_events import MongoOperatorEvents
from services.alerts.adapters.read_cache import StoreReadCache
from services.alerts.adapters.silences import MongoSilences
from services.alerts.adapters.subscriptions import MongoSubscriptions
from services.alerts.domain.ssrf import Resolver
from services.alerts.metrics import AlertsMetrics
from services.alerts.ports import Document, Stores, WebhookSender
from services.alerts.service.batching import Batcher
from services.alerts.service.delivery import DeliveryWorker
from services.alerts.service.gauges import GaugeRefresher
from services.alerts.service.policy import Policy
from services.alerts.service.silences import SilenceAdmin
from services.alerts.service.status_changes import StatusChangeHandler
from services.alerts.service.subscriptions import SubscriptionAdmin
from services.alerts.settings import AlertsSettings
from shared.clock import Clock
from shared.events.contracts import KpiStatusChangedEvent, MeasureDivergenceChangedEvent


@dataclass(frozen=True)
class AlertsGraph:
    """The alerts use cases, wired. `deliveries_due` wakes the delivery worker, `mutes_ended`
    the batcher; `handlers` is what the status topic's consumer dispatches to."""

    stores: Stores
    policy: Policy
    metrics: AlertsMetrics
    clock: Clock
    batcher: Batcher
    status_changes: StatusChangeHandler
    worker: DeliveryWorker
    gauges: GaugeRefresher
    subscriptions: SubscriptionAdmin
    silences: SilenceAdmin
    deliveries_due: asyncio.Event
    mutes_ended: asyncio.Event

    @property
    def handlers(self) -> dict[str, StatusChangeHandler]:
        """Event type → handler, for the consumer runner."""
        return {
            KpiStatusChangedEvent.TYPE: self.status_changes,
            MeasureDivergenceChangedEvent.TYPE: self.status_changes,
        }


def policy_from(settings: AlertsSettings) -> Policy:
    return Policy(
        api_url=settings.public_api_url,
        grouping_window=timedelta(seconds=settings.grouping_window_s),
        max_changes_per_delivery=settings.max_changes_per_delivery,
        reminder_interval=timedelta(seconds=settings.reminder_interval_s),
        claim_recovery=timedelta(seconds=settings.claim_recovery_s),
    )


def mongo_stores(db: AsyncDatabase[Document]) -> Stores:
    """The stores on MongoDB (FerretDB): one database, the collections of adapters/."""
    subscriptions, silences = MongoSubscriptions(db), MongoSilences(db)
    log = MongoDeliveryLog(db)
    return Stores(
        subscriptions=subscriptions,
        notifications=MongoNotifications(db),
        deliveries=MongoDeliveryQueue(db),
        leases=MongoDeliveryLeases(db, log),
        log=log,
        silences=silences,
        kpi_states=MongoKpiStates(db),
        operator_events=MongoOperatorEvents(db),
        cache=StoreReadCache(subscriptions, silences),
    )


def build_alerts(
    settings: AlertsSettings,
    *,
    clock: Clock,
    stores: Stores,
    sender: WebhookSender,
    resolver: Resolver,
    metrics: AlertsMetrics,
) -> AlertsGraph:
    """The handler graph on the given adapters."""
    policy = policy_from(settings)
    deliveries_due, mutes_ended = asyncio.Event(), asyncio.Event()
    batcher = Batcher(
        stores=stores, policy=policy, metrics=metrics, clock=clock, on_delivery=deliveries_due.set
    )
    worker = DeliveryWorker(
        stores=stores,
        sender=sender,
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
    return AlertsGraph(
        stores=stores,
        policy=policy,
        metrics=metrics,
        clock=clock,
        batcher=batcher,
        status_changes=StatusChangeHandler(
            stores=stores, policy=policy, batcher=batcher, metrics=metrics, clock=clock
        ),
        worker=worker,
        gauges=GaugeRefresher(stores, metrics),
        subscriptions=SubscriptionAdmin(
            stores=stores,
            clock=clock,
            allowed_networks=settings.allowed_target_networks,
            secret_overlap=timedelta(seconds=settings.secret_overlap_s),
            resolver=resolver,
            wake_worker=deliveries_due.set,
        ),
        silences=SilenceAdmin(stores=stores, clock=clock, wake_batcher=mutes_ended.set),
        deliveries_due=deliveries_due,
        mutes_ended=mutes_ended,
    )

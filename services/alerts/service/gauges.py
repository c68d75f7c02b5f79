"""Queue, notification and subscription gauges, refreshed periodically from the stores."""

from __future__ import annotations

from dataclasses import dataclass

from services.alerts.metrics import AlertsMetrics
from services.alerts.ports import Stores


@dataclass
class GaugeRefresher:
    stores: Stores
    metrics: AlertsMetrics

    QUEUE_STATES = ("pending", "held")
    WAITING_STATES = ("waiting", "muted", "claimed")
    SUBSCRIPTION_STATES = ("active", "paused", "disabled")

    async def refresh(self) -> bool:
        deliveries = await self.stores.deliveries.count_by_state()
        for state in self.QUEUE_STATES:
            self.metrics.deliveries.labels(state=state).set(deliveries.get(state, 0))
        self.metrics.deliveries_retrying.set(await self.stores.deliveries.count_retrying())
        notifications = await self.stores.notifications.count_by_state()
        for state in self.WAITING_STATES:
            self.metrics.notifications_by_state.labels(state=state).set(notifications.get(state, 0))
        subscriptions = await self.stores.subscriptions.count_by_state()
        for state in self.SUBSCRIPTION_STATES:
            self.metrics.subscriptions.labels(state=state).set(subscriptions.get(state, 0))
        self.metrics.disabled_endpoints.set(subscriptions.get("disabled", 0))
        return False

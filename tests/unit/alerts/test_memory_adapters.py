"""The in-memory alerts stores pass the same contracts as the MongoDB ones."""

from __future__ import annotations

import pytest

from services.alerts.adapters.memory import memory_stores
from services.alerts.ports import Stores
from tests.support.contracts.alerts import (
    DeliveriesContract,
    KpiStatesContract,
    NotificationsContract,
    OperatorEventsContract,
    SilencesContract,
    SubscriptionsContract,
)


@pytest.fixture
def stores() -> Stores:
    return memory_stores()


class TestMemorySubscriptions(SubscriptionsContract):
    pass


class TestMemoryNotifications(NotificationsContract):
    pass


class TestMemoryDeliveries(DeliveriesContract):
    pass


class TestMemorySilences(SilencesContract):
    pass


class TestMemoryKpiStates(KpiStatesContract):
    pass


class TestMemoryOperatorEvents(OperatorEventsContract):
    pass

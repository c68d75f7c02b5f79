"""The MongoDB alerts stores, on the real FerretDB, pass the port contracts (the same ones the
in-memory stores pass in the unit tier)."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator

import pytest

from services.alerts.adapters.indexes import ensure_indexes
from services.alerts.composition import mongo_stores
from services.alerts.ports import Stores
from shared.mongo import MongoClient
from shared.settings import MongoSettings
from tests.support.contracts.alerts import (
    DeliveriesContract,
    KpiStatesContract,
    NotificationsContract,
    OperatorEventsContract,
    SilencesContract,
    SubscriptionsContract,
)

pytestmark = pytest.mark.integration


@pytest.fixture
async def stores(mongo: MongoClient, mongo_config: MongoSettings) -> AsyncIterator[Stores]:
    name = f"{mongo_config.database}_alct_{secrets.token_hex(3)}"
    database = mongo[name]
    await ensure_indexes(database)
    yield mongo_stores(database)
    await mongo.drop_database(name)


class TestMongoSubscriptions(SubscriptionsContract):
    pass


class TestMongoNotifications(NotificationsContract):
    pass


class TestMongoDeliveries(DeliveriesContract):
    pass


class TestMongoSilences(SilencesContract):
    pass


class TestMongoKpiStates(KpiStatesContract):
    pass


class TestMongoOperatorEvents(OperatorEventsContract):
    pass

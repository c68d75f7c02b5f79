"""Who may write to the events topic is enforced by the broker: the local stack's Kafka
authenticates every client (SASL/SCRAM-SHA-512) and authorises it by ACL, one principal per
service (shared/kafka_acls.py). The ACLs under test are the ones `shinchoku kafka acls` and
`shinchoku kafka grant-ministry` create, given on this module's own topics."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.conn import create_conn
from aiokafka.errors import (
    GroupAuthorizationFailedError,
    KafkaConnectionError,
    SaslAuthenticationFailed,
    TopicAuthorizationFailedError,
)
from pydantic import SecretStr

from harness.stack import StackEndpoints
from shared.kafka import client_options, create_consumer, create_producer, ensure_topics
from shared.kafka_acls import ServicePrincipals, create_acls, service_bindings
from shared.settings import KafkaSettings, TopicSettings
from tests.support.stack import isolated_topics, random_suffix

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
GROUP_KPI = f"kpi-acl-{random_suffix()}"
GROUP_ALERTS = f"alerts-acl-{random_suffix()}"


@pytest.fixture(scope="module")
def admin(endpoints: StackEndpoints) -> KafkaSettings:
    settings = endpoints.kafka_as("admin")
    if settings.password is None:
        pytest.fail("the stack's Kafka gave no credentials: run `make test` (it sets them)")
    return settings


@pytest.fixture(scope="module")
async def acl_topics(admin: KafkaSettings) -> TopicSettings:
    """This module's topics, with the services' ACLs on them as `shinchoku kafka acls` gives
    them on the real ones."""
    topics = isolated_topics(f"acl-{random_suffix()}", partitions=1)
    async with asyncio.timeout(60):
        await ensure_topics(admin, topics)
        principals = ServicePrincipals(kpi_group=GROUP_KPI, alerts_group=GROUP_ALERTS)
        await create_acls(admin, service_bindings(principals, topics))
    return topics


async def produce(
    settings: KafkaSettings, topic: str, value: bytes, *, idempotent: bool = True
) -> None:
    """One record, with the services' producer (idempotent) or a plain one."""
    producer = (
        create_producer(settings, client_suffix="acl-test")
        if idempotent
        else AIOKafkaProducer(**client_options(settings), acks="all")
    )
    await producer.start()
    try:
        async with asyncio.timeout(30):
            await producer.send_and_wait(topic, value)
    finally:
        await producer.stop()


async def read_until(admin: KafkaSettings, topic: str, wanted: set[bytes]) -> list[bytes]:
    """The topic's values from the beginning, read as the admin until `wanted` are all seen."""
    consumer = AIOKafkaConsumer(
        topic, **client_options(admin), group_id=None, auto_offset_reset="earliest"
    )
    await consumer.start()
    seen: list[bytes] = []
    try:
        async with asyncio.timeout(30):
            while not wanted <= set(seen):
                batch = await consumer.getmany(timeout_ms=300)
                seen.extend(r.value for records in batch.values() for r in records if r.value)
    finally:
        await consumer.stop()
    return seen


async def first_batch(consumer: AIOKafkaConsumer) -> None:
    await consumer.start()
    async with asyncio.timeout(30):
        await consumer.getmany(timeout_ms=5000)


@pytest.fixture
async def kpi_consumer(
    endpoints: StackEndpoints, acl_topics: TopicSettings
) -> AsyncIterator[AIOKafkaConsumer]:
    consumer = create_consumer(
        endpoints.kafka_as("kpi"), topics=[acl_topics.events], group_id=GROUP_KPI
    )
    await consumer.start()
    yield consumer
    await consumer.stop()


async def test_a_principal_without_the_acl_cannot_write_the_events_topic(
    endpoints: StackEndpoints, acl_topics: TopicSettings, admin: KafkaSettings
) -> None:
    """alerts and kpi authenticate and write the dead-letter topic (their ACL), but the broker
    refuses their records on the events topic; ingest may not write the status topic."""
    for user in ("alerts", "kpi"):
        settings = endpoints.kafka_as(user)
        await produce(settings, acl_topics.dead_letter, f"{user} dead letter".encode())
        with pytest.raises(TopicAuthorizationFailedError):
            await produce(settings, acl_topics.events, f"{user} forged event".encode())
    with pytest.raises(TopicAuthorizationFailedError):
        await produce(endpoints.kafka_as("ingest"), acl_topics.status, b"ingest forged status")
    dead_letters = {b"alerts dead letter", b"kpi dead letter"}
    assert set(await read_until(admin, acl_topics.dead_letter, dead_letters)) == dead_letters


async def test_alerts_cannot_read_the_events_topic(
    endpoints: StackEndpoints, acl_topics: TopicSettings
) -> None:
    consumer = create_consumer(
        endpoints.kafka_as("alerts"), topics=[acl_topics.events], group_id=GROUP_ALERTS
    )
    with pytest.raises(TopicAuthorizationFailedError):
        await first_batch(consumer)
    await consumer.stop()


async def test_a_consumer_group_needs_its_acl(
    endpoints: StackEndpoints, acl_topics: TopicSettings
) -> None:
    """kpi may read the events topic, but only in its own consumer group."""
    consumer = create_consumer(
        endpoints.kafka_as("kpi"), topics=[acl_topics.events], group_id=GROUP_ALERTS
    )
    with pytest.raises(GroupAuthorizationFailedError):
        await first_batch(consumer)
    await consumer.stop()


async def test_kpi_may_replay_the_events_topic_in_a_fresh_group(
    endpoints: StackEndpoints, acl_topics: TopicSettings
) -> None:
    """`shinchoku replay` run as kpi's principal: a new `shinchoku-replay-*` group each time."""
    await produce(endpoints.kafka_as("ingest"), acl_topics.events, b"to replay")
    consumer = create_consumer(
        endpoints.kafka_as("kpi"),
        topics=[acl_topics.events],
        group_id=f"{ServicePrincipals().replay_group_prefix}{random_suffix()}",
    )
    await consumer.start()
    received: list[bytes] = []
    try:
        async with asyncio.timeout(60):
            while b"to replay" not in received:
                batch = await consumer.getmany(timeout_ms=300)
                received.extend(r.value for records in batch.values() for r in records if r.value)
    finally:
        await consumer.stop()
    assert b"to replay" in received


async def test_a_wrong_password_or_none_fails_authentication(
    endpoints: StackEndpoints,
) -> None:
    host, port = endpoints.kafka.rsplit(":", 1)
    right = endpoints.kafka_as("kpi")
    assert right.password is not None
    wrong = right.model_copy(
        update={"password": SecretStr(right.password.get_secret_value()[::-1])}
    )
    for settings, fails in ((wrong, True), (right, False)):
        options = client_options(settings)
        options.pop("bootstrap_servers")
        if fails:
            with pytest.raises(SaslAuthenticationFailed):
                await create_conn(host, int(port), **options)
        else:
            connection = await create_conn(host, int(port), **options)
            assert connection.connected()
            connection.close()
    # no credentials at all: the broker answers nothing but the handshake
    anonymous = AIOKafkaProducer(bootstrap_servers=endpoints.kafka, request_timeout_ms=5000)
    with pytest.raises(KafkaConnectionError):
        await anonymous.start()
    await anonymous.stop()


async def test_kpi_consumes_events_and_produces_status(
    endpoints: StackEndpoints,
    acl_topics: TopicSettings,
    admin: KafkaSettings,
    kpi_consumer: AIOKafkaConsumer,
) -> None:
    ingest = endpoints.kafka_as("ingest")
    await produce(ingest, acl_topics.events, b"event from ingest")
    received: list[bytes] = []
    async with asyncio.timeout(60):
        while b"event from ingest" not in received:
            batch = await kpi_consumer.getmany(timeout_ms=300)
            received.extend(r.value for records in batch.values() for r in records if r.value)
    await kpi_consumer.commit()  # READ on its group
    await produce(endpoints.kafka_as("kpi"), acl_topics.status, b"status from kpi")
    assert await read_until(admin, acl_topics.status, {b"status from kpi"}) == [b"status from kpi"]


async def test_the_documented_ministry_grant_lets_a_ministry_write_events(
    endpoints: StackEndpoints, acl_topics: TopicSettings, admin: KafkaSettings
) -> None:
    """`ministry-test` (a SCRAM user of the stack, no ACL) is refused until
    `shinchoku kafka grant-ministry test` runs; then it may write the events topic, and still
    nothing else."""
    ministry = endpoints.kafka_as("ministry-test")
    with pytest.raises(TopicAuthorizationFailedError):
        await produce(ministry, acl_topics.events, b"before the grant", idempotent=False)

    assert admin.password is not None
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("SHINCHOKU_")},
        "SHINCHOKU_KAFKA__BOOTSTRAP_SERVERS": admin.bootstrap_servers,
        "SHINCHOKU_KAFKA__SECURITY_PROTOCOL": admin.security_protocol,
        "SHINCHOKU_KAFKA__SASL_MECHANISM": admin.sasl_mechanism,
        "SHINCHOKU_KAFKA__USERNAME": str(admin.username),
        "SHINCHOKU_KAFKA__PASSWORD": admin.password.get_secret_value(),
        "SHINCHOKU_TOPICS__EVENTS": acl_topics.events,
    }
    grant = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "shared.cli",
        "kafka",
        "grant-ministry",
        "test",
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(120):
        stdout, stderr = (out.decode() for out in await grant.communicate())
    assert grant.returncode == 0, stderr
    assert f"User:ministry-test WRITE topic {acl_topics.events}" in stdout
    assert admin.password.get_secret_value() not in stdout + stderr

    await produce(ministry, acl_topics.events, b"straight from the ministry")
    assert b"straight from the ministry" in await read_until(
        admin, acl_topics.events, {b"straight from the ministry"}
    )
    with pytest.raises(TopicAuthorizationFailedError):
        await produce(ministry, acl_topics.status, b"forged status")


async def test_granting_again_changes_nothing(
    endpoints: StackEndpoints, admin: KafkaSettings, acl_topics: TopicSettings
) -> None:
    """The ACLs are applied on every start: creating existing ones is accepted, and grants
    exactly what it granted before."""
    principals = ServicePrincipals(kpi_group=GROUP_KPI, alerts_group=GROUP_ALERTS)
    await create_acls(admin, [*service_bindings(principals, acl_topics)] * 2)
    await produce(endpoints.kafka_as("ingest"), acl_topics.events, b"after re-applying")
    with pytest.raises(TopicAuthorizationFailedError):
        await produce(endpoints.kafka_as("alerts"), acl_topics.events, b"still refused")
    assert b"after re-applying" in await read_until(
        admin, acl_topics.events, {b"after re-applying"}
    )

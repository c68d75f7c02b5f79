"""Kafka plumbing shared by every service: producer and consumer factories, topic creation, probes.

The producer is idempotent with ``acks=all``, so a record the broker acknowledged is written once
even when the client retried it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError
from aiokafka.helpers import create_ssl_context

from shared.partitions import PartitionOwnership
from shared.settings import KafkaSettings, TopicSettings


def client_options(settings: KafkaSettings) -> dict[str, Any]:
    """The connection and authentication arguments every aiokafka client takes (producer,
    consumer, admin, bare client): the bootstrap servers and, for SASL, the principal."""
    options: dict[str, Any] = {
        "bootstrap_servers": settings.bootstrap_servers,
        "security_protocol": settings.security_protocol,
    }
    if settings.security_protocol == "PLAINTEXT":
        return options
    if settings.username is None or settings.password is None:
        raise ValueError(
            f"Kafka security_protocol {settings.security_protocol} needs a username and password"
        )
    options.update(
        sasl_mechanism=settings.sasl_mechanism,
        sasl_plain_username=settings.username,
        sasl_plain_password=settings.password.get_secret_value(),
    )
    if settings.security_protocol == "SASL_SSL":
        # the system's trust store; a private CA goes into it (or SSL_CERT_FILE)
        options["ssl_context"] = create_ssl_context()
    return options


def create_admin(settings: KafkaSettings, *, client_suffix: str = "admin") -> AIOKafkaAdminClient:
    return AIOKafkaAdminClient(
        **client_options(settings), client_id=f"{settings.client_id}-{client_suffix}"
    )


def create_producer(settings: KafkaSettings, *, client_suffix: str) -> AIOKafkaProducer:
    return AIOKafkaProducer(
        **client_options(settings),
        client_id=f"{settings.client_id}-{client_suffix}",
        enable_idempotence=True,
        acks="all",
        linger_ms=2,
        request_timeout_ms=settings.request_timeout_ms,
        max_request_size=2 * 1024 * 1024,
    )


def create_consumer(
    settings: KafkaSettings,
    *,
    topics: Iterable[str],
    group_id: str,
    max_records: int = 2000,
    ownership: PartitionOwnership | None = None,
) -> AIOKafkaConsumer:
    """A group consumer of `topics`; `ownership`, if given, follows its partition assignment."""
    consumer = AIOKafkaConsumer(
        **client_options(settings),
        client_id=f"{settings.client_id}-{group_id}",
        group_id=group_id,
        # Offsets are committed by the runner only after the handler has stored the batch.
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
        max_poll_records=max_records,
        fetch_max_bytes=8 * 1024 * 1024,
    )
    consumer.subscribe(
        topics=list(topics), listener=ownership.listener(consumer) if ownership else None
    )
    return consumer


def topic_specs(topics: TopicSettings) -> list[NewTopic]:
    return [
        NewTopic(
            name, num_partitions=topics.partitions, replication_factor=topics.replication_factor
        )
        for name in (topics.events, topics.status, topics.dead_letter)
    ]


async def ensure_topics(settings: KafkaSettings, topics: TopicSettings) -> list[str]:
    """Create the project's topics with explicit partition counts; returns those created."""
    admin = create_admin(settings)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [spec for spec in topic_specs(topics) if spec.name not in existing]
        if missing:
            # created concurrently by another init: the goal is met all the same
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics(missing)
        return [spec.name for spec in missing]
    finally:
        await admin.close()


async def kafka_reachable(producer: AIOKafkaProducer, timeout_s: float) -> bool:
    """True when the broker answers a metadata request within the timeout."""
    try:
        async with asyncio.timeout(timeout_s):
            return bool(await producer.client.fetch_all_metadata())
    except (TimeoutError, KafkaError, OSError):
        return False

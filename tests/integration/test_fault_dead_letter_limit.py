"""A record as large as the broker accepts cannot be copied to the dead-letter topic with the
dlq_* headers added: the runner must dead-letter it without its bytes rather than retry for
ever (which would stall its partition). On the real broker."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Sequence

import pytest
from aiokafka.record.default_records import DefaultRecordBatchBuilder
from prometheus_client import CollectorRegistry

from shared.consumer import ConsumerRunner, Rejection
from shared.events.cloudevents import CloudEvent
from shared.events.contracts import MINISTRY_EVENT_TYPES, KpiObservedEvent
from shared.events.kafka_binding import STRUCTURED_CONTENT_TYPE
from shared.kafka import create_consumer, create_producer, ensure_topics
from shared.metrics import ConsumerMetrics
from shared.settings import KafkaSettings, TopicSettings
from tests.integration.test_consumer_runner import observation
from tests.support.faults import read_dead_letters

pytestmark = pytest.mark.integration

LIMIT = 2 * 1024 * 1024  # the broker's message.max.bytes and the producers' max_request_size


async def test_a_record_at_the_size_limit_is_dead_lettered_without_its_value(
    kafka: KafkaSettings,
) -> None:
    """A record exactly at the producer's and broker's limit (over the consumer's) is
    dead-lettered with reason oversized_record, its size in dlq_omitted and no value; the
    valid record behind it is handled and the offsets are committed past both."""
    suffix = secrets.token_hex(4)
    topics = TopicSettings(
        events=f"test.dlqlimit.{suffix}",
        status=f"test.dlqlimit.{suffix}.status",
        dead_letter=f"test.dlqlimit.{suffix}.dlq",
        partitions=1,
    )
    await ensure_topics(kafka, topics)
    headers = [("content-type", STRUCTURED_CONTENT_TYPE.encode())]
    key = b"kpi.a"
    value = b"x" * (LIMIT - DefaultRecordBatchBuilder.estimate_size_in_bytes(key, b"", headers))
    while DefaultRecordBatchBuilder.estimate_size_in_bytes(key, value, headers) > LIMIT:
        value = value[:-1]
    valid = observation("kpi.a")
    handled: list[CloudEvent] = []
    done = asyncio.Event()

    async def handler(events: Sequence[CloudEvent]) -> Sequence[Rejection]:
        handled.extend(events)
        done.set()
        return ()

    producer = create_producer(kafka, client_suffix="dlq-limit-test")
    await producer.start()
    consumer = create_consumer(kafka, topics=[topics.events], group_id=f"dlq-limit-{suffix}")
    try:
        huge = await producer.send_and_wait(topics.events, key=key, value=value, headers=headers)
        body = valid.model_dump_json().encode()
        await producer.send_and_wait(topics.events, key=key, value=body, headers=headers)
        await consumer.start()
        runner = ConsumerRunner(
            consumer=consumer,
            dead_letter_producer=producer,
            dead_letter_topic=topics.dead_letter,
            event_types=MINISTRY_EVENT_TYPES,
            handlers={KpiObservedEvent.TYPE: handler},
            metrics=ConsumerMetrics.create("test", CollectorRegistry()),
            service="test",
            retry_backoff_s=(0.05, 0.2),
        )
        task = asyncio.create_task(runner.run())
        try:
            async with asyncio.timeout(30):
                await done.wait()
        finally:
            runner.stop()
            await asyncio.wait_for(task, 10)
        assert [e.id for e in handled] == [valid.id]
        (dead,) = await read_dead_letters(
            kafka.bootstrap_servers, topics.dead_letter, until=lambda seen: len(seen) >= 1
        )
        assert dead.value is None
        assert dead.dlq["dlq_reason"] == "oversized_record"
        assert dead.dlq["dlq_omitted"] == str(len(value))
        assert dead.source == (topics.events, huge.partition, huge.offset)
        assert dead.key == key
        committed = await consumer.committed(huge.topic_partition)
        assert committed == huge.offset + 2
    finally:
        await consumer.stop()
        await producer.stop()

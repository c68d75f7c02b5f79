"""The shared consumer runner on the real broker: poison records, retries, commits."""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import Sequence
from datetime import UTC, date, datetime

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from prometheus_client import CollectorRegistry

from shared.consumer import ConsumerRunner, Rejection, dead_letter_summary
from shared.events.cloudevents import CloudEvent
from shared.events.contracts import MINISTRY_EVENT_TYPES, KpiObservedEvent
from shared.events.kafka_binding import encode_structured
from shared.kafka import client_options, create_consumer, create_producer, ensure_topics
from shared.metrics import ConsumerMetrics
from shared.settings import KafkaSettings, TopicSettings

pytestmark = pytest.mark.integration


def observation(kpi_id: str, value: float = 1.0) -> KpiObservedEvent:
    return KpiObservedEvent.model_validate(
        {
            "specversion": "1.0",
            "id": secrets.token_hex(8),
            "source": "/ministries/mic",
            "type": KpiObservedEvent.TYPE,
            "subject": kpi_id,
            "time": datetime.now(UTC),
            "partitionkey": kpi_id,
            "data": {"kpi_id": kpi_id, "value": value, "as_of": date(2024, 3, 31)},
        }
    )


async def fresh_topics(kafka: KafkaSettings) -> TopicSettings:
    suffix = secrets.token_hex(4)
    topics = TopicSettings(
        events=f"test.runner.{suffix}",
        status=f"test.runner.{suffix}.status",
        dead_letter=f"test.runner.{suffix}.dlq",
        partitions=1,
    )
    await ensure_topics(kafka, topics)
    return topics


async def read_all(kafka: KafkaSettings, topic: str, count: int) -> list[object]:
    consumer = AIOKafkaConsumer(
        topic,
        **client_options(kafka),
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    records: list[object] = []
    try:
        async with asyncio.timeout(30):
            while len(records) < count:
                batch = await consumer.getmany(timeout_ms=500)
                for items in batch.values():
                    records.extend(items)
    finally:
        await consumer.stop()
    return records


class RecordingHandler:
    def __init__(self, fail_times: int = 0, reject_value: float | None = None) -> None:
        self.seen: list[CloudEvent] = []
        self.fail_times = fail_times
        self.reject_value = reject_value
        self.done = asyncio.Event()
        self.expected = 0

    async def __call__(self, events: Sequence[CloudEvent]) -> Sequence[Rejection]:
        if self.fail_times > 0:
            self.fail_times -= 1
            raise ConnectionError("database unavailable (simulated by the handler)")
        self.seen.extend(events)
        if len(self.seen) >= self.expected:
            self.done.set()
        return [
            Rejection(e, "value_rejected", "test rule")
            for e in events
            if e.data.value == self.reject_value
        ]


async def run_until(runner: ConsumerRunner, handler: RecordingHandler, expected: int) -> None:
    handler.expected = expected
    task = asyncio.create_task(runner.run())
    try:
        async with asyncio.timeout(45):
            await handler.done.wait()
    finally:
        runner.stop()
        await asyncio.wait_for(task, 10)


def make_runner(
    kafka: KafkaSettings,
    topics: TopicSettings,
    handler: RecordingHandler,
    consumer: AIOKafkaConsumer,
    producer: AIOKafkaProducer,
) -> ConsumerRunner:
    return ConsumerRunner(
        consumer=consumer,
        dead_letter_producer=producer,
        dead_letter_topic=topics.dead_letter,
        event_types=MINISTRY_EVENT_TYPES,
        handlers={KpiObservedEvent.TYPE: handler},
        metrics=ConsumerMetrics.create("test", CollectorRegistry()),
        service="test",
        retry_backoff_s=(0.05, 0.2),
    )


async def test_poison_records_go_to_the_dead_letter_topic_and_the_rest_are_processed(
    kafka: KafkaSettings,
) -> None:
    """Invalid JSON, a schema violation, an unknown type and an oversized record each land on the
    dead-letter topic with their reason in headers; the valid records around them are handled."""
    topics = await fresh_topics(kafka)
    producer = create_producer(kafka, client_suffix="test")
    await producer.start()
    try:
        good = [observation("kpi.a"), observation("kpi.a", 2.0)]
        await producer.send_and_wait(topics.events, key=b"kpi.a", **_record(good[0]))
        cloudevent_json = [("content-type", b"application/cloudevents+json")]
        await producer.send_and_wait(
            topics.events, key=b"kpi.a", value=b"{not json", headers=cloudevent_json
        )
        bad_schema = good[0].to_json_dict() | {"id": "x1", "data": {"kpi_id": "kpi.a"}}
        await producer.send_and_wait(
            topics.events,
            key=b"kpi.a",
            value=json.dumps(bad_schema).encode(),
            headers=cloudevent_json,
        )
        unknown = good[0].to_json_dict() | {"id": "x2", "type": "com.example.other.v1"}
        await producer.send_and_wait(
            topics.events, key=b"kpi.a", value=json.dumps(unknown).encode(), headers=cloudevent_json
        )
        huge = good[0].to_json_dict() | {"id": "x3", "pad": "x" * (1024 * 1024 + 10)}
        await producer.send_and_wait(
            topics.events, key=b"kpi.a", value=json.dumps(huge).encode(), headers=cloudevent_json
        )
        await producer.send_and_wait(topics.events, key=b"kpi.a", **_record(good[1]))

        handler = RecordingHandler()
        consumer = create_consumer(kafka, topics=[topics.events], group_id=topics.events)
        await consumer.start()
        try:
            await run_until(make_runner(kafka, topics, handler, consumer, producer), handler, 2)
        finally:
            await consumer.stop()
        assert [e.id for e in handler.seen] == [good[0].id, good[1].id]
        dead = await read_all(kafka, topics.dead_letter, 4)
        reasons = [dead_letter_summary(list(r.headers))["dlq_reason"] for r in dead]  # type: ignore[attr-defined]
        assert reasons == ["invalid_json", "schema_violation", "unknown_type", "oversized_record"]
        detail = dead_letter_summary(list(dead[1].headers))["dlq_detail"]  # type: ignore[attr-defined]
        assert "data.value" in detail
    finally:
        await producer.stop()


async def test_a_failing_handler_is_retried_and_offsets_are_committed_only_after_success(
    kafka: KafkaSettings,
) -> None:
    """A handler that fails twice sees the batch again; after success the group's committed offset
    covers the records, and a rejected event goes to the dead-letter topic."""
    topics = await fresh_topics(kafka)
    producer = create_producer(kafka, client_suffix="test")
    await producer.start()
    try:
        events = [observation("kpi.b", 1.0), observation("kpi.b", 99.0), observation("kpi.b", 3.0)]
        for event in events:
            await producer.send_and_wait(topics.events, key=b"kpi.b", **_record(event))
        handler = RecordingHandler(fail_times=2, reject_value=99.0)
        group = f"{topics.events}.group"
        consumer = create_consumer(kafka, topics=[topics.events], group_id=group)
        await consumer.start()
        try:
            runner = make_runner(kafka, topics, handler, consumer, producer)
            await run_until(runner, handler, 3)
            partition = next(iter(consumer.assignment()))
            assert await consumer.committed(partition) == 3
        finally:
            await consumer.stop()
        assert [e.id for e in handler.seen] == [e.id for e in events]
        (dead,) = await read_all(kafka, topics.dead_letter, 1)
        assert dead_letter_summary(list(dead.headers))["dlq_reason"] == "value_rejected"  # type: ignore[attr-defined]
    finally:
        await producer.stop()


def _record(event: CloudEvent) -> dict[str, object]:
    encoded = encode_structured(event)
    return {"value": encoded.value, "headers": encoded.headers}


class EvaluationFailingHandler(RecordingHandler):
    """Fails, every time, on any batch holding the poison value, as the kpi handler did on a
    value its evaluation overflowed on (issue 12)."""

    POISON = 1e308

    async def __call__(self, events: Sequence[CloudEvent]) -> Sequence[Rejection]:
        if any(e.data.value == self.POISON for e in events):
            raise ValueError("forecast_value: Input should be a finite number")
        return await super().__call__(events)


async def test_a_handler_failing_on_one_event_dead_letters_it_and_the_partition_goes_on(
    kafka: KafkaSettings,
) -> None:
    """A batch handler that always fails on one event among others on the same partition: that
    event lands on the dead-letter topic with reason handler_failed, the exception class and
    message and the handler named; the events around it are handled, and the group's committed
    offset covers them all (a restart does not stall on it again)."""
    topics = await fresh_topics(kafka)
    producer = create_producer(kafka, client_suffix="test")
    await producer.start()
    try:
        events = [
            observation("kpi.p", 1.0),
            observation("kpi.q", EvaluationFailingHandler.POISON),
            observation("kpi.r", 3.0),
        ]
        for event in events:
            await producer.send_and_wait(topics.events, key=b"kpi.same", **_record(event))
        handler = EvaluationFailingHandler()
        group = f"{topics.events}.group"
        consumer = create_consumer(kafka, topics=[topics.events], group_id=group)
        await consumer.start()
        try:
            await run_until(make_runner(kafka, topics, handler, consumer, producer), handler, 2)
            partition = next(iter(consumer.assignment()))
            assert await consumer.committed(partition) == 3
        finally:
            await consumer.stop()
        assert [e.id for e in handler.seen] == [events[0].id, events[2].id]
        (dead,) = await read_all(kafka, topics.dead_letter, 1)
        summary = dead_letter_summary(list(dead.headers))  # type: ignore[attr-defined]
        assert summary["dlq_reason"] == "handler_failed"
        assert summary["dlq_error_class"] == "ValueError"
        assert summary["dlq_error"] == "forecast_value: Input should be a finite number"
        assert summary["dlq_handler"] == "EvaluationFailingHandler"
        assert summary["dlq_source_offset"] == "1"
        assert dead.value == _record(events[1])["value"]  # type: ignore[attr-defined]
    finally:
        await producer.stop()

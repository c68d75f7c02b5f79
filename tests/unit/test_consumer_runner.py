"""The shared consumer runner's failure handling, with an in-memory consumer and producer:
transient failures are retried (and shown), deterministic ones isolated and dead-lettered.

The same runner against the real broker: tests/integration/test_consumer_runner.py.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Sequence
from datetime import UTC, date, datetime
from typing import Any

import httpx
import pytest
from aiokafka import ConsumerRecord, TopicPartition
from aiokafka.errors import KafkaConnectionError, KafkaTimeoutError, MessageSizeTooLargeError
from fastapi import FastAPI
from prometheus_client import CollectorRegistry
from pydantic import ValidationError
from pymongo.errors import (
    AutoReconnect,
    BulkWriteError,
    ExecutionTimeout,
    NetworkTimeout,
    OperationFailure,
    ServerSelectionTimeoutError,
    WriteConcernError,
)

from services.kpi.adapters.repository import VersionConflictError
from shared.consumer import (
    HANDLER_FAILED,
    Arrival,
    ConsumerHealth,
    ConsumerRunner,
    Rejection,
    TransientError,
    arrival_of,
    dead_letter_summary,
    is_transient,
)
from shared.events.cloudevents import CloudEvent
from shared.events.contracts import MINISTRY_EVENT_TYPES, KpiObserved, KpiObservedEvent
from shared.events.kafka_binding import encode_structured
from shared.http.app import probes_router
from shared.metrics import ConsumerMetrics

TOPIC = "events"
POISON = 666.0


def observation(kpi_id: str, value: float) -> KpiObservedEvent:
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


def record(event: CloudEvent, partition: int, offset: int) -> ConsumerRecord[bytes, bytes]:
    encoded = encode_structured(event)
    return ConsumerRecord(
        topic=TOPIC,
        partition=partition,
        offset=offset,
        timestamp=1_700_000_000_000 + offset,
        timestamp_type=0,
        key=encoded.key,
        value=encoded.value,
        checksum=None,
        serialized_key_size=len(encoded.key or b""),
        serialized_value_size=len(encoded.value),
        headers=list(encoded.headers),
    )


class FakeConsumer:
    """Hands out the given records once, in one fetch, and records commits."""

    def __init__(self, records: Sequence[ConsumerRecord[bytes, bytes]]) -> None:
        self.pending: dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]] = {}
        for item in records:
            self.pending.setdefault(TopicPartition(item.topic, item.partition), []).append(item)
        self.commits: list[dict[TopicPartition, int]] = []

    def end_offsets(self) -> dict[TopicPartition, int]:
        return {tp: records[-1].offset + 1 for tp, records in self.pending.items()}

    async def getmany(
        self, timeout_ms: int = 0, max_records: int | None = None
    ) -> dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]:
        await asyncio.sleep(0)
        batch, self.pending = self.pending, {}
        return batch

    async def commit(self, offsets: dict[TopicPartition, int]) -> None:
        self.commits.append(dict(offsets))

    def highwater(self, partition: TopicPartition) -> int | None:
        return None


class FakeProducer:
    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    async def send_and_wait(self, topic: str, **record: Any) -> None:
        self.sent.append({"topic": topic, **record})

    def reasons(self) -> list[dict[str, str]]:
        return [dead_letter_summary(item["headers"]) for item in self.sent]


class PoisonSensitiveHandler:
    """Fails, as a real handler would, on any batch containing a poison value: raises the given
    exception for it. Remembers every event it completed."""

    def __init__(self, error: type[Exception] = ValueError, *, fail_all: bool = False) -> None:
        self.error = error
        self.fail_all = fail_all
        self.completed: list[CloudEvent] = []
        self.calls = 0

    async def __call__(self, events: Sequence[CloudEvent]) -> Sequence[Rejection]:
        self.calls += 1
        values = [event.data.value for event in events if isinstance(event.data, KpiObserved)]
        if self.fail_all or POISON in values:
            raise self.error(f"cannot evaluate {POISON}")
        self.completed.extend(events)
        return [
            Rejection(event, "value_rejected", "negative")
            for event in events
            if isinstance(event.data, KpiObserved) and event.data.value < 0
        ]


def make_runner(
    consumer: FakeConsumer,
    producer: FakeProducer,
    handler: Any,
    *,
    registry: CollectorRegistry | None = None,
    health: ConsumerHealth | None = None,
) -> ConsumerRunner:
    return ConsumerRunner(
        consumer=consumer,
        dead_letter_producer=producer,
        dead_letter_topic="dlq",
        event_types=MINISTRY_EVENT_TYPES,
        handlers={KpiObservedEvent.TYPE: handler},
        metrics=ConsumerMetrics.create("test", registry or CollectorRegistry()),
        service="test",
        retry_backoff_s=(0.001, 0.004),
        max_attempts=3,
        health=health,
    )


async def run_to_end(runner: ConsumerRunner, consumer: FakeConsumer) -> None:
    async with asyncio.timeout(30):
        await runner.run(until=consumer.end_offsets())


@pytest.mark.parametrize(
    "error",
    [
        KafkaConnectionError(),
        KafkaTimeoutError(),
        AutoReconnect("gone"),
        ServerSelectionTimeoutError("no server"),
        NetworkTimeout("slow"),
        ExecutionTimeout("time limit", code=50),
        WriteConcernError("w", code=64),
        OperationFailure("shutting down", code=91),
        OperationFailure("backend unreachable", code=1),
        BulkWriteError({"writeErrors": [{"index": 0, "code": 91}]}),
        OSError("socket"),
        ConnectionRefusedError(),
        TimeoutError(),
        TransientError("not ready"),
        VersionConflictError(["v1"]),
    ],
    ids=repr,
)
def test_broker_database_and_network_failures_are_transient(error: Exception) -> None:
    """Failures that go away by themselves are retried, not dead-lettered."""
    assert is_transient(error)


def _validation_error() -> ValidationError:
    try:
        KpiObserved.model_validate({"kpi_id": "k", "value": "x", "as_of": "2024-01-01"})
    except ValidationError as error:
        return error
    raise AssertionError("expected a validation error")


@pytest.mark.parametrize(
    "error",
    [
        ValueError("bad"),
        _validation_error(),
        ZeroDivisionError(),
        KeyError("x"),
        OverflowError(),
        RuntimeError("bug"),
        OperationFailure("bad value", code=2),
        BulkWriteError({"writeErrors": [{"index": 0, "code": 11000}]}),
        MessageSizeTooLargeError(),
    ],
    ids=repr,
)
def test_anything_else_is_deterministic(error: Exception) -> None:
    """What the same record would fail with again is isolated, not retried for ever."""
    assert not is_transient(error)


async def test_poison_events_are_isolated_and_dead_lettered_the_rest_processed_in_order() -> None:
    """A batch handler fails on two poison events among ten on two partitions: exactly those two
    are dead-lettered, with the handler, the exception class and message named; the eight good
    ones are handled, each partition's in order; everything is committed."""
    events = {
        0: [observation(f"kpi.{i}", POISON if i == 2 else float(i)) for i in range(5)],
        1: [observation(f"kpi.p1.{i}", POISON if i == 4 else float(i)) for i in range(5)],
    }
    records = [record(e, p, o) for p, evs in events.items() for o, e in enumerate(evs)]
    consumer, producer = FakeConsumer(records), FakeProducer()
    handler = PoisonSensitiveHandler()
    runner = make_runner(consumer, producer, handler)
    await run_to_end(runner, consumer)

    poison = {events[0][2].id, events[1][4].id}
    completed = [e.id for e in handler.completed]
    assert sorted(completed) == sorted(
        e.id for evs in events.values() for e in evs if e.id not in poison
    )
    for partition_events in events.values():
        ids = [e.id for e in partition_events]
        assert [i for i in completed if i in ids] == [i for i in ids if i not in poison]
    dead = producer.reasons()
    assert [d["dlq_source_offset"] for d in dead] == ["2", "4"]
    for letter in dead:
        assert letter["dlq_reason"] == HANDLER_FAILED
        assert letter["dlq_error_class"] == "ValueError"
        assert letter["dlq_error"] == f"cannot evaluate {POISON}"
        assert letter["dlq_handler"] == "PoisonSensitiveHandler"
        assert "PoisonSensitiveHandler raised ValueError: cannot evaluate" in letter["dlq_detail"]
    assert [item["value"] for item in producer.sent] == [
        encode_structured(events[0][2]).value,
        encode_structured(events[1][4]).value,
    ]
    assert consumer.commits == [{TopicPartition(TOPIC, 0): 5, TopicPartition(TOPIC, 1): 5}]
    assert runner.health.detail() == {"retrying": False}


async def test_a_lone_poison_event_is_tried_a_bounded_number_of_times() -> None:
    """One event that always fails is attempted max_attempts times, then dead-lettered."""
    event = observation("kpi.alone", POISON)
    consumer, producer = FakeConsumer([record(event, 0, 0)]), FakeProducer()
    handler = PoisonSensitiveHandler()
    await run_to_end(make_runner(consumer, producer, handler), consumer)
    assert handler.calls == 3
    assert [d["dlq_reason"] for d in producer.reasons()] == [HANDLER_FAILED]


async def test_an_unclassified_failure_on_everything_is_never_retried_for_ever() -> None:
    """A handler that fails on every event with an unknown exception: the runner still ends
    (every event dead-lettered after bounded attempts), it does not stall the partition."""
    events = [observation(f"kpi.{i}", float(i)) for i in range(4)]
    consumer, producer = (
        FakeConsumer([record(e, 0, i) for i, e in enumerate(events)]),
        FakeProducer(),
    )
    handler = PoisonSensitiveHandler(RuntimeError, fail_all=True)
    await run_to_end(make_runner(consumer, producer, handler), consumer)
    dead = producer.reasons()
    assert [d["dlq_source_offset"] for d in dead] == ["0", "1", "2", "3"]
    assert {d["dlq_error_class"] for d in dead} == {"RuntimeError"}
    assert consumer.commits == [{TopicPartition(TOPIC, 0): 4}]


async def test_rejections_and_isolation_together() -> None:
    """A handler's own rejections still reach the dead-letter topic with their reason beside
    an isolated poison event."""
    events = [observation("kpi.a", -1.0), observation("kpi.b", POISON), observation("kpi.c", 3.0)]
    consumer, producer = (
        FakeConsumer([record(e, 0, i) for i, e in enumerate(events)]),
        FakeProducer(),
    )
    handler = PoisonSensitiveHandler()
    await run_to_end(make_runner(consumer, producer, handler), consumer)
    assert [(d["dlq_source_offset"], d["dlq_reason"]) for d in producer.reasons()] == [
        ("0", "value_rejected"),
        ("1", HANDLER_FAILED),
    ]
    assert {e.id for e in handler.completed} == {events[0].id, events[2].id}


class FlakyHandler:
    """Fails with a transient error `times` times, watching the runner's health meanwhile."""

    def __init__(self, times: int, error: Exception) -> None:
        self.times = times
        self.error = error
        self.runner: ConsumerRunner | None = None
        self.registry: CollectorRegistry | None = None
        self.while_failing: list[dict[str, Any]] = []
        self.gauges: list[tuple[float | None, float | None]] = []
        self.completed: list[CloudEvent] = []

    async def __call__(self, events: Sequence[CloudEvent]) -> Sequence[Rejection]:
        assert self.runner is not None
        assert self.registry is not None
        if self.times > 0:
            if self.times < 3:  # the runner has seen a failure by now
                self.while_failing.append(self.runner.health.detail())
                self.gauges.append(
                    (
                        self.registry.get_sample_value(
                            "shinchoku_consumer_retrying_seconds", {"service": "test"}
                        ),
                        self.registry.get_sample_value(
                            "shinchoku_consumer_stuck_partitions", {"service": "test"}
                        ),
                    )
                )
            self.times -= 1
            raise self.error
        self.completed.extend(events)
        return ()


async def test_a_transient_failure_is_retried_without_commit_and_shows_as_retrying() -> None:
    """A database outage: the same batch is retried until it passes, nothing is dead-lettered,
    no commit happens meanwhile, and health, the metrics and readiness say the consumer is
    retrying, since when and on which partitions; all clear once it passes."""
    events = [observation("kpi.a", 1.0), observation("kpi.b", 2.0)]
    consumer = FakeConsumer([record(events[0], 0, 0), record(events[1], 3, 0)])
    producer, registry = FakeProducer(), CollectorRegistry()
    handler = FlakyHandler(5, AutoReconnect("connection refused"))
    health = ConsumerHealth(stuck_after_s=0.0)
    runner = make_runner(consumer, producer, handler, registry=registry, health=health)
    handler.runner, handler.registry = runner, registry
    await run_to_end(runner, consumer)

    assert [e.id for e in handler.completed] == [e.id for e in events]
    assert producer.sent == []
    assert consumer.commits == [{TopicPartition(TOPIC, 0): 1, TopicPartition(TOPIC, 3): 1}]
    assert handler.while_failing
    for detail in handler.while_failing:
        assert detail["retrying"] is True
        assert detail["partitions"] == ["events:0", "events:3"]
        assert "AutoReconnect" in detail["error"]
        assert datetime.fromisoformat(detail["since"]) <= datetime.now(UTC)
    assert all(seconds is not None and seconds > 0 for seconds, _ in handler.gauges)
    assert all(stuck == 2 for _, stuck in handler.gauges)
    assert health.detail() == {"retrying": False}
    assert health.ready()
    assert (
        registry.get_sample_value("shinchoku_consumer_retrying_seconds", {"service": "test"}) == 0.0
    )


def test_health_is_unready_once_retrying_longer_than_allowed() -> None:
    """Retrying past stuck_after_s makes the consumer unready; recovering makes it ready."""
    health = ConsumerHealth(stuck_after_s=0.0)
    assert health.ready()
    health.retrying(AutoReconnect("x"), [TopicPartition("events", 1)])
    assert not health.ready()
    assert health.stuck_partitions() == 1
    health.recovered()
    assert health.ready()
    assert health.stuck_partitions() == 0


async def test_readyz_shows_the_consumer_detail() -> None:
    """/readyz carries each check's detail: a stuck consumer is named with its partitions."""
    health = ConsumerHealth(stuck_after_s=0.0)
    health.retrying(AutoReconnect("gone"), [TopicPartition("events", 2)])
    app = FastAPI()
    app.include_router(probes_router(CollectorRegistry(), timeout_s=1.0))

    async def consumer_ready() -> bool:
        return health.ready()

    app.state.readiness = {"consumer": consumer_ready}
    app.state.readiness_detail = {"consumer": health.detail}
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        response = await client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["checks"] == {"consumer": False}
    assert body["detail"]["consumer"]["retrying"] is True
    assert body["detail"]["consumer"]["partitions"] == ["events:2"]


async def test_handlers_see_where_each_event_arrived() -> None:
    """Each decoded event carries its record's topic, partition, offset, timestamp and key; an event
    built in code has none, and the arrival is not part of the event's JSON."""
    events = [observation("kpi.a", 1.0), observation("kpi.a", 2.0)]
    consumer = FakeConsumer([record(events[0], 1, 7), record(events[1], 1, 8)])
    handler = PoisonSensitiveHandler()
    await run_to_end(make_runner(consumer, FakeProducer(), handler), consumer)
    assert [arrival_of(e) for e in handler.completed] == [
        Arrival(TOPIC, 1, 7, 1_700_000_000_007, b"kpi.a"),
        Arrival(TOPIC, 1, 8, 1_700_000_000_008, b"kpi.a"),
    ]
    assert arrival_of(events[0]) is None
    assert "arrival" not in handler.completed[0].to_json_dict()
    assert handler.completed[0].to_json_dict() == events[0].to_json_dict()

"""The one consumer runner every service uses: decode → validate → dispatch → commit.

- Records are fetched in batches (all assigned partitions at once); undecodable records are sent
  to the dead-letter topic with the reason in headers, and the rest are dispatched, grouped by
  event type, to the registered batch handler for that type: one call per type per fetch, so a
  handler's per-call cost (database round trips) is spread over as many events as possible.
  Within a type, each partition's order is kept (one KPI's events stay in order). Events of
  different types are handed over type by type, so handlers of different types must not depend
  on each other's order (Shinchoku's types concern different subjects).
- A handler may reject individual events (``Rejection``): those go to the dead-letter topic too.
- A handler that raises (database down, broker down) is retried with bounded backoff, without
  committing, until it succeeds: handlers are idempotent by event id, so redelivery is harmless.
- Offsets are committed only after every record up to them was handled or dead-lettered.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.errors import (
    CommitFailedError,
    IllegalStateError,
    KafkaError,
    MessageSizeTooLargeError,
)

from shared.events.cloudevents import CloudEvent
from shared.events.kafka_binding import UndecodableRecord, decode_event
from shared.kafka import create_consumer
from shared.logs import batch_fields, event_fields
from shared.metrics import ConsumerMetrics
from shared.partitions import PartitionOwnership
from shared.settings import ServiceSettings

log = structlog.stdlib.get_logger("shared.consumer")


@dataclass(frozen=True, slots=True)
class Rejection:
    """A handler's verdict that one event can never be processed."""

    event: CloudEvent
    reason: str
    detail: str = ""


BatchHandler = Callable[[Sequence[CloudEvent]], Awaitable[Sequence[Rejection]]]


@dataclass(frozen=True, slots=True)
class DeadLetter:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]]
    reason: str
    detail: str


class ConsumerRunner:
    def __init__(
        self,
        *,
        consumer: AIOKafkaConsumer,
        dead_letter_producer: AIOKafkaProducer | None,
        dead_letter_topic: str | None,
        event_types: Mapping[str, type[CloudEvent]],
        handlers: Mapping[str, BatchHandler],
        metrics: ConsumerMetrics,
        service: str,
        max_records: int = 2000,
        retry_backoff_s: tuple[float, float] = (0.2, 5.0),
    ) -> None:
        self._consumer = consumer
        self._dlq = dead_letter_producer
        self._dlq_topic = dead_letter_topic
        self._event_types = event_types
        self._handlers = handlers
        self._metrics = metrics
        self._service = service
        self._max_records = max_records
        self._backoff_min, self._backoff_max = retry_backoff_s
        self._stopping = asyncio.Event()
        self.last_progress = time.monotonic()
        self.retrying_since: float | None = None
        self._positions: dict[TopicPartition, int] = {}

    def stop(self) -> None:
        self._stopping.set()

    async def run(self, *, until: Mapping[TopicPartition, int] | None = None) -> None:
        """Consume until stopped; never returns on a bad record, only on stop or cancellation.

        `until` (end offsets) makes it a bounded run, as replay needs: it returns once every
        listed partition's position has reached its end offset.
        """
        while not self._stopping.is_set():
            if until is not None and all(
                self._positions.get(tp, 0) >= end for tp, end in until.items()
            ):
                return
            batches = await self._consumer.getmany(timeout_ms=500, max_records=self._max_records)
            self.last_progress = time.monotonic()
            batches = {tp: records for tp, records in batches.items() if records}
            if batches:
                await self._process(batches)
            self._record_lag()

    async def _process(
        self, batches: Mapping[TopicPartition, list[ConsumerRecord[bytes, bytes]]]
    ) -> None:
        by_type: dict[str, list[tuple[ConsumerRecord[bytes, bytes], CloudEvent]]] = {}
        for records in batches.values():
            for record in records:
                try:
                    event = decode_event(record.value, list(record.headers), self._event_types)
                except UndecodableRecord as error:
                    await self._dead_letter(record, error.reason, error.detail)
                    continue
                by_type.setdefault(event.type, []).append((record, event))
        for run in by_type.values():
            await self._dispatch(run)
        next_offsets = {tp: records[-1].offset + 1 for tp, records in batches.items()}
        await self._commit(next_offsets)
        self._positions.update(next_offsets)

    async def _dispatch(self, run: list[tuple[ConsumerRecord[bytes, bytes], CloudEvent]]) -> None:
        event_type = run[0][1].type
        handler = self._handlers.get(event_type)
        if handler is None:
            for record, _ in run:
                await self._dead_letter(
                    record, "no_handler", f"{self._service} handles no {event_type}"
                )
            return
        events = [event for _, event in run]
        started = time.perf_counter()
        # Lines the handler logs say which batch they were written for (shared/logs.py).
        with structlog.contextvars.bound_contextvars(
            batch_event_type=event_type, topic=run[0][0].topic
        ):
            rejections = await self._retry_until_done(lambda: handler(events), what=event_type)
        elapsed = time.perf_counter() - started
        self._metrics.batch_seconds.labels(event_type=event_type).observe(elapsed)
        rejected = {rejection.event.dedup_key: rejection for rejection in rejections}
        # One line per handled batch, naming every event and subject in it (a line per event
        # would cost more than handling it).
        log.info(
            "events_handled",
            event_type=event_type,
            **batch_fields(events),
            rejected=len(rejected),
            seconds=round(elapsed, 4),
        )
        for record, event in run:
            rejection = rejected.get(event.dedup_key)
            if rejection is not None:
                await self._dead_letter(record, rejection.reason, rejection.detail, event)
            else:
                self._metrics.events.labels(event_type=event_type, outcome="processed").inc()
                # From the record's broker timestamp (written by our producer), not the
                # CloudEvents time, which the sender chose and may be days old.
                lag = time.time() - record.timestamp / 1000
                self._metrics.event_age_seconds.labels(event_type=event_type).observe(max(lag, 0))

    async def _retry_until_done(
        self, attempt: Callable[[], Awaitable[Sequence[Rejection]]], *, what: str
    ) -> Sequence[Rejection]:
        delay = self._backoff_min
        while True:
            try:
                result = await attempt()
            except asyncio.CancelledError:
                raise
            except Exception as error:
                if self.retrying_since is None:
                    self.retrying_since = time.monotonic()
                self._metrics.handler_retries.labels(event_type=what).inc()
                log.warning(
                    "handler_failed_retrying",
                    event_type=what,
                    error=repr(error),
                    retry_in_s=round(delay, 2),
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, self._backoff_max)
                self.last_progress = time.monotonic()
                continue
            self.retrying_since = None
            return result

    async def _commit(self, next_offsets: Mapping[TopicPartition, int]) -> None:
        async def commit() -> Sequence[Rejection]:
            try:
                await self._consumer.commit(dict(next_offsets))
            except (CommitFailedError, IllegalStateError) as error:
                # The group rebalanced while we worked: the partitions may belong to another
                # member now, which re-reads from the last committed offset. Handlers are
                # idempotent, so giving up this commit loses nothing.
                log.warning("commit_abandoned_after_rebalance", error=repr(error))
            return ()

        await self._retry_until_done(commit, what="commit")

    async def _dead_letter(
        self,
        record: ConsumerRecord[bytes, bytes],
        reason: str,
        detail: str,
        event: CloudEvent | None = None,
    ) -> None:
        headers = [
            *[(k, v) for k, v in record.headers if not k.startswith("dlq_")],
            ("dlq_reason", reason.encode()),
            ("dlq_detail", detail[:2000].encode()),
            ("dlq_service", self._service.encode()),
            ("dlq_source_topic", record.topic.encode()),
            ("dlq_source_partition", str(record.partition).encode()),
            ("dlq_source_offset", str(record.offset).encode()),
            ("dlq_time", datetime.now(UTC).isoformat().encode()),
        ]
        log.warning(
            "record_dead_lettered",
            reason=reason,
            detail=detail[:300],
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            **(event_fields(event) if event is not None else {}),
        )

        async def send() -> Sequence[Rejection]:
            if self._dlq is not None and self._dlq_topic is not None:
                try:
                    await self._dlq.send_and_wait(
                        self._dlq_topic, value=record.value, key=record.key, headers=headers
                    )
                except MessageSizeTooLargeError:
                    # A record just under the broker's limit is over it once our headers are
                    # added: retrying would stall the partition for ever. Dead-letter it without
                    # its value and its own headers; the original stays at its source offset.
                    await self._dlq.send_and_wait(
                        self._dlq_topic,
                        value=None,
                        key=record.key if len(record.key or b"") <= 1024 else None,
                        headers=[
                            *[(k, v) for k, v in headers if k.startswith("dlq_")],
                            ("dlq_omitted", str(len(record.value or b"")).encode()),
                        ],
                    )
            return ()

        # Without a dead-letter topic (a replay) the record is only counted: it was dead-lettered
        # when it was first consumed.
        await self._retry_until_done(send, what="dead_letter")
        self._metrics.events.labels(event_type="unknown", outcome=f"dead_letter_{reason}").inc()
        self._metrics.dead_letters.labels(reason=reason).inc()

    def _record_lag(self) -> None:
        """Consumer lag per partition: the broker's high watermark minus our next offset."""
        for partition, position in self._positions.items():
            highwater = self._consumer.highwater(partition)
            if highwater is not None:
                self._metrics.consumer_lag.labels(
                    topic=partition.topic, partition=str(partition.partition)
                ).set(max(highwater - position, 0))


def dead_letter_summary(headers: Sequence[tuple[str, bytes]]) -> dict[str, str]:
    """The dlq_* headers of a dead-letter record, decoded (for tools and tests)."""
    return {k: v.decode() for k, v in headers if k.startswith("dlq_")}


def json_body(value: bytes | None) -> object:
    return json.loads(value) if value else None


async def run_consumer(
    *,
    settings: ServiceSettings,
    topic: str,
    group_id: str,
    event_types: Mapping[str, type[CloudEvent]],
    handlers: Mapping[str, BatchHandler],
    metrics: ConsumerMetrics,
    dead_letter_producer: AIOKafkaProducer,
    service: str,
    started: asyncio.Event | None = None,
    ownership: PartitionOwnership | None = None,
) -> None:
    """Own a consumer for the life of the task: start (retrying while Kafka is away), run, stop.
    `ownership`, if given, is kept in step with the partitions the consumer holds."""
    while True:
        consumer = create_consumer(
            settings.kafka, topics=[topic], group_id=group_id, ownership=ownership
        )
        try:
            await consumer.start()
        except KafkaError as error:
            log.warning("consumer_start_failed", topic=topic, error=repr(error))
            await consumer.stop()
            await asyncio.sleep(2.0)
            continue
        except BaseException:
            # Cancelled (shutdown) while joining: close the half-started consumer, don't leak it.
            await asyncio.shield(consumer.stop())
            raise
        runner = ConsumerRunner(
            consumer=consumer,
            dead_letter_producer=dead_letter_producer,
            dead_letter_topic=settings.topics.dead_letter,
            event_types=event_types,
            handlers=handlers,
            metrics=metrics,
            service=service,
        )
        if started is not None:
            started.set()
        try:
            await runner.run()
            return
        finally:
            await consumer.stop()

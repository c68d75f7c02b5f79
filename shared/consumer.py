"""The one consumer runner every service uses: decode → validate → dispatch → commit.

- Records are fetched in batches (all assigned partitions at once); undecodable records are sent
  to the dead-letter topic with the reason in headers, and the rest are dispatched, grouped by
  event type, to the registered batch handler for that type: one call per type per fetch, so a
  handler's per-call cost (database round trips) is spread over as many events as possible.
  Within a type, each partition's order is kept (one KPI's events stay in order). Events of
  different types are handed over type by type, so handlers of different types must not depend
  on each other's order, except for ``ordered_types``: an event of such a type (an item's
  ownership change) cuts its partition's records in two, and what precedes it is handed over
  (by type, as above) before it, what follows after it. Such types are rare, so batches stay
  large.
- A handler may reject individual events (``Rejection``): those go to the dead-letter topic too.
- A handler that raises is handled by what the failure says (``is_transient``):
  - transient (broker, database, network): the same events are retried with bounded backoff,
    without committing, until they succeed. Handlers are idempotent by event id, so redelivery
    is harmless. While it lasts the runner's ``ConsumerHealth`` says so (since when, on which
    partitions): /readyz detail (the consumer check turns unready once it has retried for
    longer than ``ConsumerHealth.stuck_after_s``), ``shinchoku_consumer_retrying_seconds`` and
    ``shinchoku_consumer_stuck_partitions``, and the ShinchokuConsumerStuck alert.
  - anything else is taken as deterministic (the same events fail the same way, e.g. a value
    the handler cannot process): the batch is split in halves, each half handed over again in
    order, until the failing events stand alone; a lone event that still fails after
    ``max_attempts`` goes to the dead-letter topic (reason ``handler_failed``, with the
    exception and the handler named) and the rest are processed and committed. So one bad
    event never stalls its partition, and no exception is retried for ever.
- Offsets are committed only after every record up to them was handled or dead-lettered.
- Each decoded event carries its ``Arrival`` (topic, partition, offset, timestamp, key):
  ``arrival_of(event)``. Within one partition the offset is the order the system received
  events in, which a sender cannot choose (unlike the CloudEvents ``time``).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.errors import (
    CommitFailedError,
    IllegalStateError,
    KafkaError,
    MessageSizeTooLargeError,
    RecordTooLargeError,
)
from pymongo.errors import (
    BulkWriteError,
    ConnectionFailure,
    ExecutionTimeout,
    OperationFailure,
    PyMongoError,
    WriteConcernError,
)

from shared.consumer_types import (
    Arrival,
    BatchHandler,
    Rejection,
    TransientError,
    arrival_of,
    set_arrival,
)
from shared.events.cloudevents import CloudEvent
from shared.events.kafka_binding import UndecodableRecord, decode_event
from shared.kafka import create_consumer
from shared.logs import batch_fields, event_fields
from shared.metrics import ConsumerMetrics
from shared.partitions import PartitionOwnership
from shared.settings import ServiceSettings

log = structlog.stdlib.get_logger("shared.consumer")

HANDLER_FAILED = "handler_failed"


__all__ = [
    "HANDLER_FAILED",
    "Arrival",
    "BatchHandler",
    "ConsumerHealth",
    "ConsumerRunner",
    "DeadLetter",
    "Rejection",
    "TransientError",
    "arrival_of",
    "dead_letter_summary",
    "handler_name",
    "is_transient",
    "json_body",
    "run_consumer",
    "set_arrival",
]


# MongoDB server error codes that mean "try again" (network, elections, shutdown, time limits),
# from the server's error_codes.yml; FerretDB answers a backend it cannot reach with InternalError.
_TRANSIENT_MONGO_CODES = frozenset(
    {1, 6, 7, 89, 91, 112, 189, 262, 9001, 10107, 11600, 11602, 13435, 13436, 50, 24}
)
# Kafka errors that concern one record, not the broker: retrying them cannot help.
_DETERMINISTIC_KAFKA = (MessageSizeTooLargeError, RecordTooLargeError)


def is_transient(error: BaseException) -> bool:
    """Whether `error` is worth retrying as it is: broker, database or network trouble."""
    if isinstance(error, TransientError):
        return True
    if isinstance(error, KafkaError):
        return not isinstance(error, _DETERMINISTIC_KAFKA)
    if isinstance(error, ConnectionFailure | ExecutionTimeout | WriteConcernError):
        return True
    if isinstance(error, PyMongoError) and (
        error.has_error_label("RetryableWriteError")
        or error.has_error_label("TransientTransactionError")
    ):
        return True
    if isinstance(error, BulkWriteError):
        details = error.details or {}
        codes = {e.get("code") for e in details.get("writeErrors", [])}
        return bool(details.get("writeConcernErrors")) or bool(codes & _TRANSIENT_MONGO_CODES)
    if isinstance(error, OperationFailure) and error.code in _TRANSIENT_MONGO_CODES:
        return True
    return isinstance(error, OSError | TimeoutError)


@dataclass
class ConsumerHealth:
    """Whether a consumer is stuck retrying a transient failure, since when and where: what
    /readyz and the retrying metric report. One per consumer, kept across its restarts."""

    # Retrying for longer than this makes the consumer unready.
    stuck_after_s: float = 60.0
    since: datetime | None = None
    partitions: tuple[str, ...] = ()
    error: str = ""
    attempts: int = 0
    _since_monotonic: float | None = field(default=None, repr=False)

    def retrying(self, error: BaseException, partitions: Sequence[TopicPartition]) -> None:
        if self._since_monotonic is None:
            self._since_monotonic = time.monotonic()
            self.since = datetime.now(UTC)
        self.partitions = tuple(sorted(f"{tp.topic}:{tp.partition}" for tp in partitions))
        self.error = repr(error)[:300]
        self.attempts += 1

    def recovered(self) -> None:
        self._since_monotonic = None
        self.since = None
        self.partitions = ()
        self.error = ""
        self.attempts = 0

    def retrying_seconds(self) -> float:
        if self._since_monotonic is None:
            return 0.0
        return time.monotonic() - self._since_monotonic

    def stuck_partitions(self) -> int:
        return len(self.partitions) if self._since_monotonic is not None else 0

    def ready(self) -> bool:
        return self.retrying_seconds() <= self.stuck_after_s

    def detail(self) -> dict[str, Any]:
        if self.since is None:
            return {"retrying": False}
        return {
            "retrying": True,
            "since": self.since.isoformat(),
            "seconds": round(self.retrying_seconds(), 1),
            "partitions": list(self.partitions),
            "attempts": self.attempts,
            "error": self.error,
        }


@dataclass(frozen=True, slots=True)
class _Isolated:
    """An event whose handler failed deterministically on it alone."""

    event: CloudEvent
    error: BaseException
    handler: str

    def as_rejection(self) -> Rejection:
        return Rejection(
            self.event,
            HANDLER_FAILED,
            f"{self.handler} raised {type(self.error).__qualname__}: {self.error}",
        )


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


def handler_name(handler: object) -> str:
    return str(getattr(handler, "__qualname__", None) or type(handler).__qualname__)


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
        max_attempts: int = 3,
        health: ConsumerHealth | None = None,
        ordered_types: Collection[str] = (),
    ) -> None:
        self._consumer = consumer
        self._ordered_types = frozenset(ordered_types)
        self._dlq = dead_letter_producer
        self._dlq_topic = dead_letter_topic
        self._event_types = event_types
        self._handlers = handlers
        self._metrics = metrics
        self._service = service
        self._max_records = max_records
        self._backoff_min, self._backoff_max = retry_backoff_s
        # Attempts at one lone event failing deterministically before it is dead-lettered.
        self._max_attempts = max(1, max_attempts)
        self._stopping = asyncio.Event()
        self.last_progress = time.monotonic()
        self.health = health or ConsumerHealth()
        self._partitions_in_hand: tuple[TopicPartition, ...] = ()
        self._positions: dict[TopicPartition, int] = {}
        metrics.retrying_seconds.labels(service=service).set_function(self.health.retrying_seconds)
        metrics.stuck_partitions.labels(service=service).set_function(self.health.stuck_partitions)

    @property
    def retrying_since(self) -> datetime | None:
        return self.health.since

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
        self._partitions_in_hand = tuple(batches)
        # segment -> type -> events; a partition moves to the next segment around each event of
        # an ordered type (segments 0, 2, 4... for the rest, 1, 3... for those).
        segments: dict[int, dict[str, list[tuple[ConsumerRecord[bytes, bytes], CloudEvent]]]] = {}
        for records in batches.values():
            segment = 0
            for record in records:
                try:
                    event = decode_event(record.value, list(record.headers), self._event_types)
                except UndecodableRecord as error:
                    await self._dead_letter(record, error.reason, error.detail)
                    continue
                set_arrival(
                    event,
                    Arrival(
                        record.topic, record.partition, record.offset, record.timestamp, record.key
                    ),
                )
                if event.type in self._ordered_types:
                    segment += 1 if segment % 2 == 0 else 2
                elif segment % 2 == 1:
                    segment += 1
                by_type = segments.setdefault(segment, {})
                by_type.setdefault(event.type, []).append((record, event))
        for segment in sorted(segments):
            for run in segments[segment].values():
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
            outcomes = await self._handle(handler, events, event_type)
        elapsed = time.perf_counter() - started
        self._metrics.batch_seconds.labels(event_type=event_type).observe(elapsed)
        rejected: dict[str, tuple[Rejection, list[tuple[str, bytes]]]] = {}
        for outcome in outcomes:
            if isinstance(outcome, _Isolated):
                rejected[outcome.event.dedup_key] = (
                    outcome.as_rejection(),
                    [
                        ("dlq_error_class", type(outcome.error).__qualname__.encode()),
                        ("dlq_error", str(outcome.error)[:1000].encode()),
                        ("dlq_handler", outcome.handler.encode()),
                    ],
                )
            else:
                rejected[outcome.event.dedup_key] = (outcome, [])
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
            verdict = rejected.get(event.dedup_key)
            if verdict is not None:
                rejection, extra = verdict
                await self._dead_letter(record, rejection.reason, rejection.detail, event, extra)
            else:
                self._metrics.events.labels(event_type=event_type, outcome="processed").inc()
                # From the record's broker timestamp (written by our producer), not the
                # CloudEvents time, which the sender chose and may be days old.
                lag = time.time() - record.timestamp / 1000
                self._metrics.event_age_seconds.labels(event_type=event_type).observe(max(lag, 0))

    async def _handle(
        self, handler: BatchHandler, events: list[CloudEvent], what: str
    ) -> list[Rejection | _Isolated]:
        """Hand `events` to `handler`: transient failures are retried with backoff until they
        pass; a deterministic failure splits the batch (halves in order, so each partition's
        order is kept) until the failing events stand alone, which are isolated."""
        delay = self._backoff_min
        failures = 0
        while True:
            try:
                result = await handler(events)
            except asyncio.CancelledError:
                raise
            except Exception as error:
                self._metrics.handler_retries.labels(event_type=what).inc()
                if is_transient(error):
                    self.health.retrying(error, self._partitions_in_hand)
                    log.warning(
                        "handler_failed_retrying",
                        event_type=what,
                        events=len(events),
                        error=repr(error),
                        retry_in_s=round(delay, 2),
                    )
                else:
                    failures += 1
                    log.warning(
                        "handler_failed_isolating",
                        event_type=what,
                        events=len(events),
                        attempt=failures,
                        error=repr(error),
                    )
                    if len(events) > 1:
                        middle = len(events) // 2
                        first = await self._handle(handler, events[:middle], what)
                        return [*first, *await self._handle(handler, events[middle:], what)]
                    if failures >= self._max_attempts:
                        (event,) = events
                        return [_Isolated(event, error, handler_name(handler))]
                await asyncio.sleep(delay)
                delay = min(delay * 2, self._backoff_max)
                self.last_progress = time.monotonic()
                continue
            self.health.recovered()
            return list(result)

    async def _retry_until_done(
        self, attempt: Callable[[], Awaitable[Sequence[Rejection]]], *, what: str
    ) -> Sequence[Rejection]:
        """Broker operations of the runner's own (commit, dead-letter): retried until done."""
        delay = self._backoff_min
        while True:
            try:
                result = await attempt()
            except asyncio.CancelledError:
                raise
            except Exception as error:
                self.health.retrying(error, self._partitions_in_hand)
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
            self.health.recovered()
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
        extra_headers: Sequence[tuple[str, bytes]] = (),
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
            *extra_headers,
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
    health: ConsumerHealth | None = None,
    ordered_types: Collection[str] = (),
) -> None:
    """Own a consumer for the life of the task: start (retrying while Kafka is away), run, stop.
    `ownership`, if given, is kept in step with the partitions the consumer holds; `health`, if
    given, reports whether the consumer is stuck retrying (for /readyz)."""
    health = health or ConsumerHealth()
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
            health=health,
            ordered_types=ordered_types,
        )
        if started is not None:
            started.set()
        try:
            await runner.run()
            return
        finally:
            await consumer.stop()

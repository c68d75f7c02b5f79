"""Helpers for the fault tests (tests/*/test_fault_*.py): raw records onto Kafka, the dead-letter
topic read back, a consumer group's committed offsets, status changes as the kpi service writes
them, and bounded polling. Nothing here fakes Kafka or MongoDB."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import TypeVar

from aiokafka import AIOKafkaConsumer, TopicPartition

from shared.consumer import dead_letter_summary
from shared.events.contracts import KpiStatusChanged, Status, new_status_event
from shared.events.kafka_binding import EncodedRecord, encode_structured
from tests.support.stack import kafka_client_options

T = TypeVar("T")


async def eventually(
    probe: Callable[[], Awaitable[T | None]], *, timeout_s: float, every_s: float = 0.25, what: str
) -> T:
    """Bounded polling: the first truthy result of `probe`, or AssertionError after timeout_s."""
    deadline = time.monotonic() + timeout_s
    last: T | None = None
    while time.monotonic() < deadline:
        last = await probe()
        if last:
            return last
        await asyncio.sleep(every_s)
    raise AssertionError(f"not within {timeout_s}s: {what} (last: {last!r})")


@dataclass(frozen=True)
class DeadLetterRecord:
    key: bytes | None
    value: bytes | None
    dlq: dict[str, str]

    @property
    def source(self) -> tuple[str, int, int]:
        return (
            self.dlq["dlq_source_topic"],
            int(self.dlq["dlq_source_partition"]),
            int(self.dlq["dlq_source_offset"]),
        )


async def read_dead_letters(
    bootstrap_servers: str,
    topic: str,
    until: Callable[[list[DeadLetterRecord]], bool],
    timeout_s: float = 60.0,
) -> list[DeadLetterRecord]:
    """Every record of the dead-letter topic from the beginning, until `until` holds (or the
    timeout passes: then AssertionError with what was seen)."""
    consumer = AIOKafkaConsumer(
        topic,
        **kafka_client_options(bootstrap_servers),
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        group_id=None,
        fetch_max_bytes=16 * 1024 * 1024,
        max_partition_fetch_bytes=4 * 1024 * 1024,
    )
    seen: list[DeadLetterRecord] = []
    await consumer.start()
    try:
        async with asyncio.timeout(timeout_s):
            while not until(seen):
                batch = await consumer.getmany(timeout_ms=300)
                for records in batch.values():
                    seen.extend(
                        DeadLetterRecord(r.key, r.value, dead_letter_summary(list(r.headers)))
                        for r in records
                    )
    except TimeoutError:
        summary = [(d.dlq.get("dlq_service"), d.dlq.get("dlq_reason"), d.source) for d in seen]
        raise AssertionError(f"dead letters after {timeout_s}s: {summary}") from None
    finally:
        await consumer.stop()
    return seen


async def committed_offsets(
    bootstrap_servers: str, group_id: str, topic: str, partitions: int
) -> dict[int, int]:
    """The group's committed offset per partition (-1 where it has committed nothing), read by a
    consumer that subscribes to nothing, so it never joins (or rebalances) the group."""
    consumer = AIOKafkaConsumer(
        **kafka_client_options(bootstrap_servers), group_id=group_id, enable_auto_commit=False
    )
    await consumer.start()
    try:
        result = {}
        for partition in range(partitions):
            committed = await consumer.committed(TopicPartition(topic, partition))
            result[partition] = -1 if committed is None else int(committed)
        return result
    finally:
        await consumer.stop()


def status_change_record(
    kpi_id: str,
    *,
    seq: int,
    status: Status,
    previous: Status | None,
    episode: int = 1,
    measure_id: str = "m.fault",
    ministries: Sequence[str] = ("mic",),
) -> EncodedRecord:
    """A status change as the kpi service publishes it (deterministic event id per KPI and seq)."""
    change = KpiStatusChanged(
        kpi_id=kpi_id,
        kind="kpi",
        measure_id=measure_id,
        ministries=list(ministries),
        previous_status=previous,
        status=status,
        episode_id=f"{kpi_id}:episode-{episode}",
        evaluated_on=date.today(),
        explanation={"rule_id": "kpi.trajectory", "message": "fault test"},
    )
    event = new_status_event(change, event_id=f"status:{kpi_id}:{seq}", time=datetime.now(UTC))
    return encode_structured(event)

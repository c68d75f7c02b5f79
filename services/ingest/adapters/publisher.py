"""Publishes encoded records to the events topic and waits for the broker's acknowledgement.

The producer is idempotent with ``acks=all`` (shared/kafka.py). A record counts as published only
when its delivery future resolved without error within the delivery timeout; anything else is a
failure the caller must not report as accepted. A record that timed out may still be delivered
later by the producer's own retries: the sender is told to retry, and the consumers drop the
resulting duplicate by source + id.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Sequence

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from aiokafka.partitioner import DefaultPartitioner

from shared.events.kafka_binding import EncodedRecord
from shared.logs import get_logger

log = get_logger(__name__)


class PublishFailed(Exception):  # noqa: N818 - reads as the condition it reports
    """The broker did not acknowledge the record: nothing may be claimed accepted."""


_PARTITIONER = DefaultPartitioner()


@functools.lru_cache(maxsize=16384)
def partition_of(key: bytes, partitions: tuple[int, ...]) -> int:
    """The partition aiokafka's default partitioner picks for `key` (murmur2, as the Java
    client), cached: a few thousand catalogue ids cover every key."""
    return int(_PARTITIONER(key, list(partitions), list(partitions)))


def _consume_outcome(future: asyncio.Future[object]) -> None:
    # A delivery that resolves after we stopped waiting must not log "exception never retrieved".
    if not future.cancelled():
        future.exception()


class KafkaEventPublisher:
    def __init__(self, producer: AIOKafkaProducer, topic: str, timeout_s: float) -> None:
        self._producer = producer
        self._topic = topic
        self._timeout_s = timeout_s

    async def publish_many(self, records: Sequence[EncodedRecord]) -> list[BaseException | None]:
        """Send all, then wait for every acknowledgement; one result (None = acked) per record.

        ``send()`` per record, not ``send_batch()``: records of concurrent requests then share
        the producer's open batches (one request's batch would wait for the previous one to
        drain). The partition is the default partitioner's, computed once per key."""
        deadline = time.monotonic() + self._timeout_s
        futures: list[asyncio.Future[object]] = []
        try:
            async with asyncio.timeout(self._timeout_s):
                partitions = tuple(sorted(await self._producer.partitions_for(self._topic)))
                for record in records:
                    futures.append(
                        await self._producer.send(
                            self._topic,
                            value=record.value,
                            key=record.key,
                            headers=record.headers,
                            partition=partition_of(record.key, partitions),
                        )
                    )
        except (TimeoutError, KafkaError, OSError) as error:
            log.warning("kafka_send_failed", error=repr(error), records=len(records))
            for future in futures:
                future.add_done_callback(_consume_outcome)
            return [PublishFailed(repr(error))] * len(records)
        if futures:
            # asyncio.wait, not gather: on timeout the futures stay with the producer, uncancelled.
            await asyncio.wait(futures, timeout=max(0.0, deadline - time.monotonic()))
        results: list[BaseException | None] = []
        for future in futures:
            if not future.done():
                future.add_done_callback(_consume_outcome)
                results.append(PublishFailed("no acknowledgement within the delivery timeout"))
            elif future.cancelled():
                results.append(PublishFailed("the send was cancelled"))
            else:
                results.append(future.exception())
        failed = sum(r is not None for r in results)
        if failed:
            log.warning("kafka_delivery_failed", failed=failed, records=len(records))
        return results

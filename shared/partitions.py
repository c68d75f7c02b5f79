"""Which keys this service instance owns: the partitions its consumer group member holds.

Records are keyed (the KPI id for events and status changes), so the member holding a key's
partition is the only writer of that key's state. Work that is not driven by records (the kpi
service's time-driven sweep) asks `owns(key)` so two instances never evaluate the same KPI,
and caches of per-key state are dropped (`generation` changes) whenever the assignment does.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.partitioner import murmur2


def partition_for(key: str, partition_count: int) -> int:
    """The partition Kafka's default partitioner (Java and aiokafka alike) puts `key` in."""
    hashed: int = murmur2(key.encode())
    return (hashed & 0x7FFFFFFF) % partition_count


class PartitionOwnership:
    """The partitions of one topic this instance holds, kept current by a rebalance listener.

    `PartitionOwnership.everything()` owns every key: for a process that is the only writer
    (replay, in-process tests).
    """

    def __init__(self, topic: str, *, owns_everything: bool = False) -> None:
        self.topic = topic
        self._owns_everything = owns_everything
        self._partitions: frozenset[int] = frozenset()
        self._partition_count = 0
        self._assigned = asyncio.Event()
        if owns_everything:
            self._assigned.set()
        self.generation = 0

    @classmethod
    def everything(cls) -> PartitionOwnership:
        return cls("", owns_everything=True)

    @property
    def partitions(self) -> frozenset[int]:
        return self._partitions

    def owns(self, key: str) -> bool:
        if self._owns_everything:
            return True
        if not self._partition_count:
            return False
        return partition_for(key, self._partition_count) in self._partitions

    def partition_of(self, key: str) -> int | None:
        """The key's partition; None for an owner of everything (no topic behind it)."""
        if self._owns_everything or not self._partition_count:
            return None
        return partition_for(key, self._partition_count)

    def owned_partitions(self) -> frozenset[int] | None:
        """The partitions held; None for an owner of everything."""
        return None if self._owns_everything else self._partitions

    def assign(self, partitions: Iterable[int], partition_count: int) -> None:
        self._partitions = frozenset(partitions)
        self._partition_count = partition_count
        self.generation += 1
        self._assigned.set()

    def revoke(self) -> None:
        self._partitions = frozenset()
        self.generation += 1
        self._assigned.clear()

    async def wait_assigned(self, timeout_s: float | None = None) -> bool:
        """Until the consumer holds its partitions (True), or `timeout_s` passes (False)."""
        try:
            await asyncio.wait_for(self._assigned.wait(), timeout=timeout_s)
        except TimeoutError:
            return False
        return True

    def listener(self, consumer: AIOKafkaConsumer) -> ConsumerRebalanceListener:
        return _OwnershipListener(self, consumer)


class _OwnershipListener(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, ownership: PartitionOwnership, consumer: AIOKafkaConsumer) -> None:
        self._ownership = ownership
        self._consumer = consumer

    async def on_partitions_revoked(self, revoked: Iterable[TopicPartition]) -> None:
        self._ownership.revoke()

    async def on_partitions_assigned(self, assigned: Iterable[TopicPartition]) -> None:
        topic = self._ownership.topic
        count = len(self._consumer.partitions_for_topic(topic) or ())
        self._ownership.assign((tp.partition for tp in assigned if tp.topic == topic), count)

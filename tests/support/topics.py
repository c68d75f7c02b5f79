"""Reading what services wrote to Kafka, for assertions (a real consumer, no group)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

from aiokafka import AIOKafkaConsumer

from tests.support.stack import kafka_client_options


class TopicTail:
    """Follows a topic from the beginning; `wait_for` collects decoded JSON values that match."""

    def __init__(self, bootstrap_servers: str, topic: str) -> None:
        self._consumer = AIOKafkaConsumer(
            topic,
            **kafka_client_options(bootstrap_servers),
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            group_id=None,
        )
        self.seen: list[dict[str, Any]] = []

    async def __aenter__(self) -> TopicTail:
        await self._consumer.start()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self._consumer.stop()

    async def wait_for(
        self, predicate: Callable[[list[dict[str, Any]]], bool], timeout_s: float = 60.0
    ) -> list[dict[str, Any]]:
        async with asyncio.timeout(timeout_s):
            while not predicate(self.seen):
                batch = await self._consumer.getmany(timeout_ms=300)
                for records in batch.values():
                    self.seen.extend(json.loads(r.value) for r in records)
        return self.seen


def status_changes(seen: list[dict[str, Any]], kpi_id: str) -> list[dict[str, Any]]:
    """The data of the status_changed events for one KPI, in order."""
    return [event["data"] for event in seen if event.get("data", {}).get("kpi_id") == kpi_id]

"""Publishes status changes to the status topic and waits for every acknowledgement."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from aiokafka import AIOKafkaProducer

from shared.events.kafka_binding import STRUCTURED_CONTENT_TYPE


class StatusPublisher:
    def __init__(self, producer: AIOKafkaProducer, topic: str) -> None:
        self._producer = producer
        self._topic = topic

    async def publish(self, events: list[dict[str, Any]]) -> None:
        """`events` are status CloudEvents as JSON dicts (from the outbox); raises on failure."""
        futures = []
        for event in events:
            body = json.dumps(event, ensure_ascii=False, separators=(",", ":")).encode()
            futures.append(
                await self._producer.send(
                    self._topic,
                    value=body,
                    key=event["partitionkey"].encode(),
                    headers=[("content-type", STRUCTURED_CONTENT_TYPE.encode())],
                )
            )
        await asyncio.gather(*futures)

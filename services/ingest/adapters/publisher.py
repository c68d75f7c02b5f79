"""Publishes accepted events to the events topic and waits for the broker's acknowledgement."""

from __future__ import annotations

import asyncio

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from shared.events.cloudevents import CloudEvent
from shared.events.kafka_binding import encode_structured


class PublishFailed(Exception):  # noqa: N818 - reads as the condition it reports
    """The broker did not acknowledge the record: nothing may be claimed accepted."""


class KafkaEventPublisher:
    def __init__(self, producer: AIOKafkaProducer, topic: str, timeout_s: float) -> None:
        self._producer = producer
        self._topic = topic
        self._timeout_s = timeout_s

    async def publish_many(self, events: list[CloudEvent]) -> list[BaseException | None]:
        """Send all, then wait for every acknowledgement; one result (None = acked) per event."""
        try:
            async with asyncio.timeout(self._timeout_s):
                futures = []
                for event in events:
                    record = encode_structured(event)
                    futures.append(
                        await self._producer.send(
                            self._topic, value=record.value, key=record.key, headers=record.headers
                        )
                    )
                results = await asyncio.gather(*futures, return_exceptions=True)
        except (TimeoutError, KafkaError, OSError) as error:
            return [PublishFailed(repr(error))] * len(events)
        return [r if isinstance(r, BaseException) else None for r in results]

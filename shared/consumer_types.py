"""What a batch handler exchanges with the consumer runner (shared/consumer.py): its verdicts
(`Rejection`), the failure it may raise to be retried (`TransientError`), and where each event
was read (`Arrival`).

Apart from the runner so a service layer can speak them without importing Kafka or MongoDB
(tests/unit/test_layer_boundaries.py).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from shared.events.cloudevents import CloudEvent


@dataclass(frozen=True, slots=True)
class Rejection:
    """A handler's verdict that one event can never be processed."""

    event: CloudEvent
    reason: str
    detail: str = ""


BatchHandler = Callable[[Sequence[CloudEvent]], Awaitable[Sequence[Rejection]]]


@dataclass(frozen=True, slots=True)
class Arrival:
    """Where and when the system received an event: its record's place in the topic, the
    record timestamp and key. Within one partition `offset` is the order of arrival."""

    topic: str
    partition: int
    offset: int
    timestamp_ms: int
    key: bytes | None = None


def set_arrival(event: CloudEvent, arrival: Arrival) -> None:
    """Annotate a decoded event with where it was read (the runner does; replays and tests)."""
    event._arrival = arrival


def arrival_of(event: CloudEvent) -> Arrival | None:
    """The event's arrival, set by the runner that decoded it (None for an event built in code)."""
    arrival = event._arrival  # the runner's private annotation, not an attribute
    return arrival if isinstance(arrival, Arrival) else None


class TransientError(Exception):
    """Raised by a handler for a failure that goes away by itself (a write conflict with another
    instance, a dependency not ready): retried, never dead-lettered."""

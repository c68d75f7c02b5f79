"""Ownership changes travel from ingest to kpi as events (no I/O: in-memory store, publisher,
consumer): the event a change makes, ingest's publishing rounds, kpi's verdict on a record, and
the runner handing a change over between the item's events that precede and follow it."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import pytest
from aiokafka import ConsumerRecord
from prometheus_client import CollectorRegistry

from services.ingest.adapters.publisher import PublishFailed
from services.ingest.handlers import OwnershipAdmin
from services.ingest.ownership_sync import (
    OwnershipNotPropagated,
    OwnershipPropagator,
    owners_changed_event,
    owners_changed_record,
)
from services.kpi.ownership import (
    INCONSISTENT,
    KEY_MISMATCH,
    UNTRUSTED_SOURCE,
    OwnershipChanges,
    change_of,
    verdict,
)
from shared.catalogue.overrides import OwnershipChange
from shared.consumer import Arrival, ConsumerRunner, Rejection, set_arrival
from shared.events.cloudevents import CloudEvent
from shared.events.contracts import (
    MINISTRY_EVENT_TYPES,
    OWNERSHIP_EVENT_TYPES,
    ItemOwnersChanged,
    ItemOwnersChangedEvent,
    KpiObservedEvent,
)
from shared.events.kafka_binding import EncodedRecord, decode_event
from shared.metrics import ConsumerMetrics
from tests.unit.test_consumer_runner import (
    TOPIC,
    FakeConsumer,
    FakeProducer,
    observation,
)
from tests.unit.test_consumer_runner import (
    record as runner_record,
)

ITEM = "kpi.5g-population-coverage"
CHANGED_AT = datetime(2026, 12, 4, 9, 0, 0, 123000, tzinfo=UTC)


def change(change_id: str = "6750a1c2e4b0a1b2c3d4e5f6", **overrides: Any) -> OwnershipChange:
    fields: dict[str, Any] = {
        "item_id": ITEM,
        "action": "set",
        "owners": ["mic", "digital"],
        "previous": ["mic"],
        "catalogue_owners": ["mic"],
        "reason": "co-reporting during the transition",
        "changed_by": "ops: test",
        "changed_at": CHANGED_AT,
        "change_id": change_id,
    }
    return OwnershipChange(**{**fields, **overrides})


# --- the event ---------------------------------------------------------------------------------


def test_the_event_is_keyed_by_the_item_and_identified_by_the_change() -> None:
    """Keyed like the item's ministry events (record key = partitionkey = subject = item id),
    from ingest, its id derived from the change id; it decodes as the contract's type."""
    record = owners_changed_record(change())
    assert record.key == ITEM.encode()
    event = decode_event(record.value, list(record.headers), OWNERSHIP_EVENT_TYPES)
    assert isinstance(event, ItemOwnersChangedEvent)
    assert (event.source, event.id) == ("/services/ingest", "owners:6750a1c2e4b0a1b2c3d4e5f6")
    assert event.subject == event.partitionkey == ITEM
    assert event.data == ItemOwnersChanged(
        item_id=ITEM,
        action="set",
        owners=["mic", "digital"],
        change_id="6750a1c2e4b0a1b2c3d4e5f6",
        reason="co-reporting during the transition",
        changed_by="ops: test",
        changed_at=CHANGED_AT,
    )


def test_publishing_a_change_again_yields_the_same_record() -> None:
    """Idempotent: the record depends on the change alone (its time is the change's), so a
    change published twice is one event downstream."""
    assert owners_changed_record(change()) == owners_changed_record(change())
    assert owners_changed_record(change("a" * 24)) != owners_changed_record(change("b" * 24))


def test_a_reset_carries_the_release_owners_it_returns_to() -> None:
    event = owners_changed_event(change(action="reset", owners=["mic"]))
    assert (event.data.action, event.data.owners) == ("reset", ["mic"])


def test_ministries_cannot_post_the_type_over_http() -> None:
    """Ingest's HTTP parser knows the ministry types only: an ownership change is not one."""
    assert ItemOwnersChangedEvent.TYPE not in MINISTRY_EVENT_TYPES


# --- ingest publishes recorded changes --------------------------------------------------------


@dataclass
class FakeStore:
    pending: list[OwnershipChange]
    marked: list[str] = field(default_factory=list)

    async def unpropagated(self) -> list[OwnershipChange]:
        return [c for c in self.pending if c.change_id not in self.marked]

    async def mark_propagated(self, change_ids: Sequence[str], now: datetime) -> None:
        self.marked.extend(change_ids)


@dataclass
class FakePublisher:
    fail_from: int | None = None  # the index of the first record refused
    sent: list[EncodedRecord] = field(default_factory=list)

    async def publish_many(self, records: Sequence[EncodedRecord]) -> list[BaseException | None]:
        results: list[BaseException | None] = []
        for record in records:
            if self.fail_from is not None and len(self.sent) >= self.fail_from:
                results.append(PublishFailed("broker away"))
            else:
                self.sent.append(record)
                results.append(None)
        return results


def propagator(store: FakeStore, publisher: FakePublisher) -> OwnershipPropagator:
    return OwnershipPropagator(
        store,  # type: ignore[arg-type]
        publisher,  # type: ignore[arg-type]
        lambda: CHANGED_AT,
    )


async def test_recorded_changes_are_published_oldest_first_then_marked() -> None:
    store = FakeStore([change("a" * 24), change("b" * 24, owners=["mic"])])
    publisher = FakePublisher()
    assert await propagator(store, publisher).publish_pending() == 2
    assert [r.value for r in publisher.sent] == [
        owners_changed_record(c).value for c in store.pending
    ]
    assert store.marked == ["a" * 24, "b" * 24]
    assert await propagator(store, publisher).publish_pending() == 0


async def test_a_refused_publish_stops_the_round_and_is_published_by_the_next() -> None:
    """The first change the broker refuses stays unpropagated, and no later change goes out
    ahead of it; the next round publishes both, in order."""
    store = FakeStore([change("a" * 24), change("b" * 24)])
    publisher = FakePublisher(fail_from=0)
    with pytest.raises(OwnershipNotPropagated) as refused:
        await propagator(store, publisher).publish_pending()
    assert refused.value.change_id == "a" * 24
    assert (publisher.sent, store.marked) == ([], [])
    # the periodic round swallows the failure (logged) and never busy-loops
    assert await propagator(store, publisher).round() is False
    publisher.fail_from = None
    assert await propagator(store, publisher).round() is False
    assert store.marked == ["a" * 24, "b" * 24]


@dataclass
class FakeOwnership:
    recorded: list[OwnershipChange] = field(default_factory=list)

    async def set_owners(self, item_id: str, owners: Sequence[str], **kw: Any) -> OwnershipChange:
        self.recorded.append(change(owners=list(owners), changed_at=kw["now"]))
        return self.recorded[-1]


@dataclass
class FakeCatalogue:
    invalidated: int = 0

    def invalidate(self) -> None:
        self.invalidated += 1


async def test_the_admin_change_is_recorded_and_in_force_when_kafka_refuses_it() -> None:
    """A change the broker did not take is still recorded and the local cache dropped (in force
    at ingest); the caller is told it is not propagated (the API answers 503)."""
    store = FakeOwnership()
    catalogue = FakeCatalogue()

    class Refusing:
        async def publish_pending(self) -> int:
            raise OwnershipNotPropagated("c" * 24, PublishFailed("broker away"))

    admin = OwnershipAdmin(
        store,  # type: ignore[arg-type]
        catalogue,  # type: ignore[arg-type]
        lambda: CHANGED_AT,
        Refusing(),  # type: ignore[arg-type]
    )
    with pytest.raises(OwnershipNotPropagated):
        await admin.set(ITEM, ["digital"], "moved", "ops")
    assert [c.owners for c in store.recorded] == [["digital"]]
    assert catalogue.invalidated == 1


# --- kpi's verdict on a record ----------------------------------------------------------------


def decoded(record: EncodedRecord, key: bytes | None = None) -> CloudEvent:
    event = decode_event(record.value, list(record.headers), OWNERSHIP_EVENT_TYPES)
    set_arrival(event, Arrival(TOPIC, 0, 7, 0, record.key if key is None else key))
    return event


def test_kpi_accepts_a_change_from_ingest_keyed_by_its_item() -> None:
    assert verdict(decoded(owners_changed_record(change()))) is None


def test_kpi_refuses_a_change_from_another_source() -> None:
    forged = owners_changed_event(change()).model_copy(update={"source": "/ministries/mic"})
    rejection = verdict(forged)
    assert rejection is not None
    assert rejection.reason == UNTRUSTED_SOURCE


def test_kpi_refuses_a_change_keyed_by_another_id() -> None:
    """Under another key it would sit in another partition, unordered among the item's events."""
    rejection = verdict(decoded(owners_changed_record(change()), key=b"kpi.other"))
    assert rejection is not None
    assert rejection.reason == KEY_MISMATCH


@pytest.mark.parametrize("attribute", ["subject", "id"])
def test_kpi_refuses_a_change_whose_subject_or_id_do_not_match_its_data(attribute: str) -> None:
    event = owners_changed_event(change()).model_copy(update={attribute: "kpi.other"})
    rejection = verdict(event)
    assert rejection is not None
    assert rejection.reason == INCONSISTENT


@dataclass
class AppliedOnce:
    applied: list[str] = field(default_factory=list)

    async def apply_received(self, received: OwnershipChange, *, now: datetime) -> bool:
        if received.change_id in self.applied:
            return False
        self.applied.append(received.change_id)
        return True


async def test_kpi_applies_each_change_once_then_redefines_its_items() -> None:
    store = AppliedOnce()
    redefined: list[list[str]] = []

    async def redefine(items: Sequence[str]) -> None:
        redefined.append(list(items))

    handler = OwnershipChanges(store, redefine, lambda: CHANGED_AT)  # type: ignore[arg-type]
    first = decoded(owners_changed_record(change("a" * 24)))
    again = decoded(owners_changed_record(change("a" * 24)))
    forged = owners_changed_event(change("b" * 24)).model_copy(update={"source": "/x"})
    rejections = await handler.on_owners_changed([first, again, forged])
    assert [r.reason for r in rejections] == [UNTRUSTED_SOURCE]
    assert store.applied == ["a" * 24]
    assert redefined == [[ITEM]]
    assert change_of(first.data) == replace(change("a" * 24), previous=[], catalogue_owners=[])


# --- the runner keeps a change between the item's events before and after it -------------------


def ownership_record(offset: int) -> ConsumerRecord[bytes, bytes]:
    encoded = owners_changed_record(change())
    return ConsumerRecord(
        topic=TOPIC,
        partition=0,
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


def observation_record(
    value: float, offset: int, partition: int = 0
) -> ConsumerRecord[bytes, bytes]:
    return runner_record(observation(ITEM, value), partition, offset)


async def handed_over(ordered: bool) -> list[tuple[str, list[Any]]]:
    """The calls a runner makes for one fetch: obs 1, change, obs 2 on partition 0 and obs 3 on
    partition 1."""
    consumer = FakeConsumer(
        [
            observation_record(1.0, 0),
            ownership_record(1),
            observation_record(2.0, 2),
            observation_record(3.0, 0, partition=1),
        ]
    )
    calls: list[tuple[str, list[Any]]] = []

    async def on_observed(events: Sequence[CloudEvent]) -> Sequence[Rejection]:
        calls.append(("observed", [e.data.value for e in events]))
        return ()

    async def on_owners(events: Sequence[CloudEvent]) -> Sequence[Rejection]:
        calls.append(("owners", [e.data.owners for e in events]))
        return ()

    runner = ConsumerRunner(
        consumer=consumer,
        dead_letter_producer=FakeProducer(),
        dead_letter_topic="dlq",
        event_types={**MINISTRY_EVENT_TYPES, **OWNERSHIP_EVENT_TYPES},
        handlers={KpiObservedEvent.TYPE: on_observed, ItemOwnersChangedEvent.TYPE: on_owners},
        metrics=ConsumerMetrics.create("test", CollectorRegistry()),
        service="test",
        ordered_types=OWNERSHIP_EVENT_TYPES if ordered else (),
    )
    async with asyncio.timeout(30):
        await runner.run(until=consumer.end_offsets())
    return calls


async def test_an_ownership_change_is_handed_over_between_the_events_around_it() -> None:
    """What precedes the change in its partition is handled before it, what follows after it;
    other partitions' events stay batched with the first segment."""
    assert await handed_over(ordered=True) == [
        ("observed", [1.0, 3.0]),
        ("owners", [["mic", "digital"]]),
        ("observed", [2.0]),
    ]


async def test_without_ordered_types_the_runner_batches_by_type() -> None:
    """The default (every other type): one call per type per fetch, types in first-seen order,
    so an observation after a change would be judged before it."""
    assert await handed_over(ordered=False) == [
        ("observed", [1.0, 2.0, 3.0]),
        ("owners", [["mic", "digital"]]),
    ]

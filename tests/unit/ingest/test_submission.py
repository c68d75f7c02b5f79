"""`IngestHandler.submit` on the in-memory adapters (built by the composition root): accepted only
once the broker acknowledged, each event once, and an outage answered as a retry, never as a
half-accepted event."""

from __future__ import annotations

import json

from services.ingest.service.authentication import Principal
from services.ingest.service.errors import StorageUnavailable
from services.ingest.service.submission import Outcome, Unavailable
from tests.support.ingest_memory import (
    MEASURE,
    PERCENT_KPI,
    RETIRED_KPI,
    MemoryIngest,
    kpi_observed,
    memory_ingest,
)

DIGITAL = Principal(key_id="a1b2c3d4e5f6", ministry="digital")


def counted(ingest: MemoryIngest, outcome: str, reason: str = "") -> float:
    value = ingest.registry.get_sample_value(
        "shinchoku_ingest_events_total",
        {
            "event_type": "shinchoku.kpi.observed.v1",
            "ministry": "digital",
            "outcome": outcome,
            "reason": reason,
        },
    )
    return value or 0.0


def published_ids(ingest: MemoryIngest) -> list[str]:
    return [json.loads(record.value)["id"] for record in ingest.publisher.records]


async def test_a_valid_event_is_published_keyed_by_its_kpi_then_accepted() -> None:
    """ACCEPTED, with the record on the topic keyed by the KPI id, in structured mode."""
    ingest = memory_ingest()
    (result,) = await ingest.service.submission.submit([kpi_observed(ingest.clock)], DIGITAL)
    assert result.outcome is Outcome.ACCEPTED
    (record,) = ingest.publisher.records
    assert record.key == PERCENT_KPI.encode()
    assert json.loads(record.value)["partitionkey"] == PERCENT_KPI
    assert counted(ingest, "accepted") == 1


async def test_the_same_event_again_is_a_duplicate_and_not_published_again() -> None:
    ingest = memory_ingest()
    submit = ingest.service.submission.submit
    await submit([kpi_observed(ingest.clock)], DIGITAL)
    ingest.clock.advance(seconds=1)
    (again,) = await submit([kpi_observed(ingest.clock)], DIGITAL)
    assert again.outcome is Outcome.DUPLICATE
    assert published_ids(ingest) == ["e-1"]


async def test_the_same_event_twice_in_one_request_is_published_once() -> None:
    ingest = memory_ingest()
    event = kpi_observed(ingest.clock)
    results = await ingest.service.submission.submit([event, event], DIGITAL)
    assert [r.outcome for r in results] == [Outcome.ACCEPTED, Outcome.IN_FLIGHT]
    assert published_ids(ingest) == ["e-1"]


async def test_refusals_name_their_reason_and_keep_the_order_of_the_batch() -> None:
    """Another ministry's source, an item the caller does not own, an unknown or retired item,
    a measure id in a KPI event: each refused with its code, in place; the valid one accepted."""
    ingest = memory_ingest()
    clock = ingest.clock
    events = [
        kpi_observed(clock, ministry="mic", event_id="other-source"),
        kpi_observed(clock, kpi_id="kpi.no-such-kpi", event_id="unknown"),
        kpi_observed(clock, event_id="valid"),
        kpi_observed(clock, kpi_id=RETIRED_KPI, event_id="retired"),
        kpi_observed(clock, 130.0, event_id="impossible"),
        kpi_observed(clock, kpi_id=MEASURE, event_id="kind"),
    ]
    results = await ingest.service.submission.submit(events, DIGITAL)
    assert [(r.event.id, r.outcome.value, r.reason) for r in results] == [
        ("other-source", "rejected", "source_not_key_ministry"),
        ("unknown", "rejected", "unknown_id"),
        ("valid", "accepted", ""),
        ("retired", "rejected", "retired_id"),
        ("impossible", "rejected", "impossible_value"),
        ("kind", "rejected", "unknown_id"),
    ]
    assert published_ids(ingest) == ["valid"]


async def test_a_ministry_that_does_not_own_the_item_is_refused() -> None:
    ingest = memory_ingest()
    moj = Principal(key_id="0123456789ab", ministry="moj")
    (result,) = await ingest.service.submission.submit(
        [kpi_observed(ingest.clock, ministry="moj")], moj
    )
    assert (result.outcome, result.reason) == (Outcome.REJECTED, "wrong_ministry")


async def test_an_event_without_time_is_published_with_the_receive_time() -> None:
    """Every reader (and a replay) sees the same time: the receive time, written in."""
    ingest = memory_ingest()
    event = kpi_observed(ingest.clock).model_copy(update={"time": None})
    (result,) = await ingest.service.submission.submit([event], DIGITAL)
    assert result.outcome is Outcome.ACCEPTED
    (record,) = ingest.publisher.records
    assert json.loads(record.value)["time"].startswith(ingest.clock.now.isoformat()[:19])


async def test_an_event_too_large_for_a_record_is_refused_before_it_is_claimed() -> None:
    ingest = memory_ingest(limits={"max_event_bytes": 1024})
    event = kpi_observed(ingest.clock, note="x" * 1024)
    (result,) = await ingest.service.submission.submit([event], DIGITAL)
    assert (result.outcome, result.reason) == (Outcome.REJECTED, "event_too_large")
    assert ingest.receipts.claims == {}


async def test_a_catalogue_outage_makes_every_event_unavailable() -> None:
    ingest = memory_ingest()
    ingest.catalogue.down = True
    (result,) = await ingest.service.submission.submit([kpi_observed(ingest.clock)], DIGITAL)
    assert (result.outcome, result.unavailable) == (Outcome.UNAVAILABLE, Unavailable.STORAGE)
    assert ingest.publisher.records == []
    assert counted(ingest, "unavailable", "storage") == 1


async def test_a_receipt_store_outage_makes_every_valid_event_unavailable() -> None:
    ingest = memory_ingest()
    ingest.receipts.down = True
    results = await ingest.service.submission.submit(
        [kpi_observed(ingest.clock), kpi_observed(ingest.clock, ministry="mic", event_id="x")],
        DIGITAL,
    )
    assert [(r.outcome, r.unavailable) for r in results] == [
        (Outcome.UNAVAILABLE, Unavailable.STORAGE),
        (Outcome.REJECTED, None),
    ]
    assert ingest.publisher.records == []


async def test_an_event_the_broker_refused_is_released_and_accepted_on_retry() -> None:
    """Not acknowledged → UNAVAILABLE (kafka) and its claim released, so the retry publishes it
    at once instead of waiting for the takeover age."""
    ingest = memory_ingest()
    ingest.publisher.refuse = True
    (refused,) = await ingest.service.submission.submit([kpi_observed(ingest.clock)], DIGITAL)
    assert (refused.outcome, refused.unavailable) == (Outcome.UNAVAILABLE, Unavailable.KAFKA)
    assert ingest.receipts.accepted_batches == set()
    ingest.publisher.refuse = False
    ingest.clock.advance(seconds=1)
    (retried,) = await ingest.service.submission.submit([kpi_observed(ingest.clock)], DIGITAL)
    assert retried.outcome is Outcome.ACCEPTED
    assert published_ids(ingest) == ["e-1"]


async def test_an_accepted_event_stays_accepted_when_its_receipt_cannot_be_written() -> None:
    """The broker has it: the sender is told accepted even if marking the batch failed (a retry
    would then be told in flight, then take it over: at worst a duplicate record, never a lost
    event)."""
    ingest = memory_ingest()

    async def failing_accept(batch_id: str, events: int, now: object) -> None:
        raise StorageUnavailable("the batch marker was not written")

    ingest.receipts.accept = failing_accept  # type: ignore[method-assign]
    (result,) = await ingest.service.submission.submit([kpi_observed(ingest.clock)], DIGITAL)
    assert result.outcome is Outcome.ACCEPTED
    assert published_ids(ingest) == ["e-1"]

"""What the kpi service makes of a record read from the events topic before it folds it: the
checks ingest made, made again (a record may have reached the topic by another path,
docs/trust-model.md), its subject, and the records it is stored and folded as."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from services.kpi.domain.model import (
    UNKNOWN_ARRIVAL,
    MilestoneReport,
    Observation,
    ReportedState,
)
from services.kpi.ports import ReceivedEvent
from shared.consumer_types import Rejection, arrival_of
from shared.events.cloudevents import CloudEvent
from shared.events.contracts import KpiObserved, MilestoneReported, subject_id
from shared.events.validation import ItemFacts, Rules, by_priority, check_event

# The checks ingest makes, made again on every record (an event about an entry retired after
# ingest accepted it is still recorded).
KAFKA_RULES = Rules(refuse_retired=False)


def arrival(event: CloudEvent) -> int:
    """The event's record offset in its partition: the order the system received it in (one
    KPI's events share a partition: ingest keys them by the KPI id)."""
    found = arrival_of(event)
    return UNKNOWN_ARRIVAL if found is None else found.offset


def misplaced(events: Iterable[CloudEvent]) -> list[Rejection]:
    """Events read from a record not keyed by their subject: arrival order (the offset) is only
    an order within one partition, so a subject's events must all be keyed by its id (as
    ingest keys them); a record written straight to Kafka under another key could otherwise
    jump the order of its subject's revisions."""
    rejections = []
    for event in events:
        found = arrival_of(event)
        subject = subject_id(event)
        if found is not None and found.key != subject.encode():
            rejections.append(
                Rejection(
                    event,
                    "partition_key_mismatch",
                    f"the record key {found.key!r} is not the subject id {subject!r}: one "
                    "subject's events share one partition, whose order decides which revision "
                    "counts",
                )
            )
    return rejections


def recheck(
    event: CloudEvent,
    facts: ItemFacts | None,
    owners: frozenset[str],
    now: datetime,
    received_at: datetime,
) -> Rejection | None:
    """The shared validation's verdict on a record, as a dead-letter reason (None: accept)."""
    violations = check_event(
        event, item=facts, owners=owners, now=now, received_at=received_at, rules=KAFKA_RULES
    )
    if not violations:
        return None
    first = by_priority(violations)[0]
    return Rejection(event, first.code, "; ".join(v.reason for v in violations))


def received_event(event: CloudEvent, now: datetime) -> ReceivedEvent:
    """The record an observation or report is stored as."""
    data = event.data
    as_of = getattr(data, "as_of", None)
    return ReceivedEvent(
        key=event.dedup_key,
        event_id=event.id,
        source=event.source,
        type=event.type,
        subject_id=subject_id(event),
        as_of=as_of,
        # Without a sender's time, the time it was processed stands in for the receive time.
        time=event.time or now,
        arrival=arrival(event),
        data=data.model_dump(mode="json") if hasattr(data, "model_dump") else None,
    )


def domain_event(
    event: CloudEvent, first_arrival: int, now: datetime
) -> Observation | MilestoneReport:
    """The event as the domain folds it, with the arrival it was first stored with."""
    data = event.data
    if isinstance(data, KpiObserved):
        return Observation(
            event_id=event.id,
            value=data.value,
            as_of=data.as_of,
            received_at=event.time or now,
            arrival=first_arrival,
        )
    assert isinstance(data, MilestoneReported)
    return MilestoneReport(
        event_id=event.id,
        state=ReportedState(data.state.value),
        percent_complete=data.percent_complete,
        expected_completion=data.expected_completion,
        as_of=data.as_of,
        received_at=event.time or now,
        arrival=first_arrival,
    )

"""Submitting events: validate against the catalogue, deduplicate, publish, and only then
accept. One `Result` per event, in order; a store or broker that fails makes the events it
concerns UNAVAILABLE (the sender retries), never a half-accepted answer."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from services.ingest.domain.encoding import encode_event
from services.ingest.domain.keys import check_source
from services.ingest.domain.receipts import new_batch_id
from services.ingest.metrics import IngestMetrics
from services.ingest.ports import Catalogue, CatalogueEntry, Claim, EventPublisher, ReceiptStore
from services.ingest.service.authentication import Principal
from services.ingest.service.errors import StorageUnavailable
from shared.clock import Clock
from shared.events.cloudevents import CloudEvent
from shared.events.contracts import MeasureAssessed, subject_id
from shared.events.kafka_binding import EncodedRecord
from shared.events.validation import (
    DEFAULT_RULES,
    Rules,
    Violation,
    by_priority,
    check_event,
)
from shared.logs import batch_fields, event_fields, get_logger

log = get_logger(__name__)


class Outcome(StrEnum):
    ACCEPTED = "accepted"
    DUPLICATE = "duplicate"
    REJECTED = "rejected"
    IN_FLIGHT = "in_flight"
    UNAVAILABLE = "unavailable"


class Unavailable(StrEnum):
    KAFKA = "kafka"
    STORAGE = "storage"


@dataclass(frozen=True, slots=True)
class Result:
    event: CloudEvent
    outcome: Outcome
    violations: tuple[Violation, ...] = ()
    unavailable: Unavailable | None = None

    @property
    def reason(self) -> str:
        if self.violations:
            return self.violations[0].code
        return self.unavailable.value if self.unavailable else ""


@dataclass
class IngestHandler:
    catalogue: Catalogue
    receipts: ReceiptStore
    publisher: EventPublisher
    metrics: IngestMetrics
    clock: Clock
    max_record_bytes: int
    rules: Rules = DEFAULT_RULES

    async def submit(self, events: Sequence[CloudEvent], principal: Principal) -> list[Result]:
        """Results in the order of `events`. ACCEPTED only after the broker acknowledged."""
        results: dict[int, Result] = {}
        try:
            valid, records = await self._validate(events, principal, results)
            await self._claim_and_publish(events, valid, records, results)
        finally:
            self._observe(events, results, principal)
        return [results[i] for i in range(len(events))]

    def _observe(
        self, events: Sequence[CloudEvent], results: dict[int, Result], principal: Principal
    ) -> None:
        """Metrics per (type, outcome, reason), counted once per group; refusals logged one by
        one, the accepted events of a request in one line (shared/logs.py)."""
        counts: Counter[tuple[str, str, str]] = Counter()
        accepted: list[CloudEvent] = []
        for index, result in sorted(results.items()):
            counts[(events[index].type, result.outcome.value, result.reason)] += 1
            if result.outcome is Outcome.ACCEPTED:
                accepted.append(result.event)
            elif result.outcome is not Outcome.DUPLICATE:
                log.info(
                    "event_refused",
                    **event_fields(result.event),
                    source=result.event.source,
                    outcome=result.outcome.value,
                    reason=result.reason,
                    key_id=principal.key_id,
                )
        if accepted:
            log.info(
                "events_accepted",
                **batch_fields(accepted),
                ministry=principal.ministry,
                key_id=principal.key_id,
            )
        for (event_type, outcome, reason), count in counts.items():
            self.metrics.count_event(event_type, principal.ministry, outcome, reason, count)

    async def _validate(
        self, events: Sequence[CloudEvent], principal: Principal, results: dict[int, Result]
    ) -> tuple[list[int], dict[int, EncodedRecord]]:
        now = self.clock()  # the receive time: `time` and `as_of` are judged against it
        allowed: list[int] = []
        for index, event in enumerate(events):
            refused = check_source(event.source, principal.ministry)
            if refused is not None:
                results[index] = Result(event, Outcome.REJECTED, (refused,))
            else:
                allowed.append(index)
        try:
            is_measure = {i: isinstance(events[i].data, MeasureAssessed) for i in allowed}
            items = await self.catalogue.items(
                subject_id(events[i]) for i in allowed if not is_measure[i]
            )
            measures = await self.catalogue.measures(
                subject_id(events[i]) for i in allowed if is_measure[i]
            )
        except StorageUnavailable as error:
            log.warning("catalogue_unavailable", error=repr(error))
            for i in allowed:
                results[i] = Result(events[i], Outcome.UNAVAILABLE, unavailable=Unavailable.STORAGE)
            return [], {}
        valid: list[int] = []
        records: dict[int, EncodedRecord] = {}
        for index in allowed:
            event = events[index]
            target = subject_id(event)
            is_measure_event = isinstance(event.data, MeasureAssessed)
            entry: CatalogueEntry | None = (measures if is_measure_event else items).get(target)
            violations = check_event(
                event,
                item=None if entry is None else entry.facts,
                owners=frozenset() if entry is None else entry.owners,
                now=now,
                rules=self.rules,
            )
            if not violations:
                # The record key is the catalogue id: one KPI's events stay on one partition.
                # Without a sender's `time`, the receive time stands in, written into the
                # record so that every reader (and a replay) sees the same time.
                stamped = (
                    event if event.time is not None else event.model_copy(update={"time": now})
                )
                record = encode_event(stamped, target)
                if len(record.value) > self.max_record_bytes:
                    violations.append(
                        Violation(
                            "(event)",
                            f"the event encodes to {len(record.value)} bytes; "
                            f"the limit is {self.max_record_bytes}",
                            "event_too_large",
                        )
                    )
                else:
                    records[index] = record
            if violations:
                results[index] = Result(event, Outcome.REJECTED, by_priority(violations))
            else:
                valid.append(index)
        return valid, records

    async def _claim_and_publish(
        self,
        events: Sequence[CloudEvent],
        valid: list[int],
        records: dict[int, EncodedRecord],
        results: dict[int, Result],
    ) -> None:
        if not valid:
            return
        now = self.clock()
        batch_id = new_batch_id(now)
        try:
            claims = await self.receipts.claim([events[i] for i in valid], batch_id, now)
        except StorageUnavailable as error:
            log.warning("receipts_unavailable", error=repr(error))
            for i in valid:
                results[i] = Result(events[i], Outcome.UNAVAILABLE, unavailable=Unavailable.STORAGE)
            return
        to_publish: list[tuple[int, str]] = []
        for index, claimed in zip(valid, claims, strict=True):
            if claimed.claim is Claim.NEW:
                assert claimed.claim_id is not None
                to_publish.append((index, claimed.claim_id))
            else:
                duplicate = claimed.claim is Claim.DUPLICATE
                outcome = Outcome.DUPLICATE if duplicate else Outcome.IN_FLIGHT
                results[index] = Result(events[index], outcome)
        if not to_publish:
            return
        self.metrics.events_in_flight.inc(len(to_publish))
        try:
            with self.metrics.produce_seconds.time():
                errors = await self.publisher.publish_many([records[i] for i, _ in to_publish])
        finally:
            self.metrics.events_in_flight.dec(len(to_publish))
        failed = [claim for (_, claim), err in zip(to_publish, errors, strict=True) if err]
        acked = len(to_publish) - len(failed)
        await self._settle(batch_id, failed, acked)
        for (index, _), err in zip(to_publish, errors, strict=True):
            if err is None:
                results[index] = Result(events[index], Outcome.ACCEPTED)
            else:
                results[index] = Result(
                    events[index], Outcome.UNAVAILABLE, unavailable=Unavailable.KAFKA
                )

    async def _settle(self, batch_id: str, failed: list[str], acked: int) -> None:
        """Release the failed claims, then mark the batch accepted (in that order: a reader
        must never see a failed event as accepted)."""
        now = self.clock()
        try:
            await self.receipts.release(failed, now)
        except StorageUnavailable as error:
            # The failed claims turn stale after the takeover age and are published by a retry
            # then. The acknowledged events are in Kafka: they are still answered as accepted.
            log.error("receipt_release_failed", error=repr(error), claims=len(failed))
            return
        if acked:
            try:
                await self.receipts.accept(batch_id, acked, now)
            except StorageUnavailable as error:
                log.error("receipt_accept_failed", error=repr(error), batch=batch_id)

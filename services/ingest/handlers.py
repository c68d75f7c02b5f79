"""Ingest use cases: authenticate a key, admit a request, and submit events — validate against the
catalogue, deduplicate, publish, and only then accept."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import Any

from pymongo.errors import PyMongoError

from services.ingest.adapters.catalogue import CachedCatalogue
from services.ingest.adapters.keys import ApiKeyStore, KeyCache
from services.ingest.adapters.publisher import KafkaEventPublisher, encode_event
from services.ingest.adapters.receipts import Claim, ReceiptStore, new_batch_id
from services.ingest.domain.keys import KeyRecord, check_source, parse_key, verify
from services.ingest.domain.rate_limit import TokenBucket
from services.ingest.metrics import IngestMetrics
from services.ingest.ownership_sync import OwnershipPropagator
from shared.catalogue.overrides import OwnershipChange, OwnershipStore
from shared.events.cloudevents import CloudEvent
from shared.events.contracts import MeasureAssessed, subject_id
from shared.events.kafka_binding import EncodedRecord
from shared.events.validation import (
    DEFAULT_RULES,
    Rules,
    Violation,
    by_priority,
    check_event,
    facts_from_catalogue,
    owners_from_catalogue,
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
class Principal:
    """Who is calling: an API key and the ministry it speaks for."""

    key_id: str
    ministry: str


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


class AuthFailure(StrEnum):
    MISSING = "missing"
    MALFORMED = "malformed"
    UNKNOWN = "unknown"
    REVOKED = "revoked"


@dataclass
class KeyAuthenticator:
    keys: KeyCache

    async def authenticate(self, raw_key: str | None) -> Principal | AuthFailure:
        if not raw_key:
            return AuthFailure.MISSING
        presented = parse_key(raw_key)
        if presented is None:
            log.info("auth_failed", reason=AuthFailure.MALFORMED.value)
            return AuthFailure.MALFORMED
        record = await self.keys.get(presented.key_id)
        failure = None
        if record is None:
            failure = AuthFailure.UNKNOWN
        elif not record.active:
            # "Revoked" only for the holder of the secret: anyone else learns nothing of the
            # key id (the answer is the same generic 401 either way; this is for logs/metrics).
            matches = verify(presented, replace(record, revoked_at=None))
            failure = AuthFailure.REVOKED if matches else AuthFailure.UNKNOWN
        elif not verify(presented, record):
            failure = AuthFailure.UNKNOWN
        if failure is not None or record is None:
            # The key id is public (it names the key); the secret never leaves this function.
            log.info(
                "auth_failed",
                reason=(failure or AuthFailure.UNKNOWN).value,
                key_id=presented.key_id,
            )
            return failure or AuthFailure.UNKNOWN
        return Principal(key_id=record.key_id, ministry=record.ministry)


@dataclass
class KeyAdmin:
    store: ApiKeyStore
    cache: KeyCache
    clock: Callable[[], datetime]

    async def create(self, ministry: str, label: str | None) -> tuple[str, KeyRecord]:
        full, record = await self.store.create(ministry, self.clock(), label)
        # Audit trail: the key id names the key; the key itself is never logged.
        log.info("api_key_created", key_id=record.key_id, ministry=ministry)
        return full, record

    async def list(self, ministry: str | None) -> list[KeyRecord]:
        return await self.store.list(ministry)

    async def revoke(self, key_id: str) -> KeyRecord | None:
        record = await self.store.revoke(key_id, self.clock())
        self.cache.invalidate(key_id)
        if record is not None:
            log.info("api_key_revoked", key_id=key_id, ministry=record.ministry)
        return record


@dataclass
class OwnershipAdmin:
    """Run-time changes of who may report a KPI or milestone (shared.catalogue.overrides)."""

    store: OwnershipStore
    catalogue: CachedCatalogue
    clock: Callable[[], datetime]
    # Publishes recorded changes to the kpi service (services/ingest/ownership_sync.py).
    propagator: OwnershipPropagator | None = None

    async def set(
        self, item_id: str, owners: Sequence[str], reason: str, changed_by: str
    ) -> OwnershipChange:
        """Raises `UnknownItemError`. Effective at once here, within the catalogue cache TTL on
        every other instance; raises `OwnershipNotPropagated` (the change recorded and in force
        here) when it could not be published to the kpi service yet."""
        change = await self.store.set_owners(
            item_id, owners, reason=reason, changed_by=changed_by, now=self.clock()
        )
        self._log(change)
        await self._propagate()
        return change

    async def reset(self, item_id: str, reason: str, changed_by: str) -> OwnershipChange:
        change = await self.store.reset_owners(
            item_id, reason=reason, changed_by=changed_by, now=self.clock()
        )
        self._log(change)
        await self._propagate()
        return change

    async def _propagate(self) -> None:
        # Published before this instance's cache shows the change: an event it accepts on the
        # new owners' word lands after the change in the item's partition.
        try:
            if self.propagator is not None:
                await self.propagator.publish_pending()
        finally:
            self.catalogue.invalidate()

    async def view(self, item_id: str) -> tuple[dict[str, Any], list[OwnershipChange]]:
        """The item as loaded (owners in force, the release's, the override) and its history."""
        item = await self.store.item(item_id)
        return item, await self.store.history(item_id)

    @staticmethod
    def _log(change: OwnershipChange) -> None:
        # Audit trail beside the history collection.
        log.info(
            "item_owners_changed",
            kpi_id=change.item_id,
            change_id=change.change_id,
            action=change.action,
            owners=change.owners,
            previous=change.previous,
            changed_by=change.changed_by,
            reason=change.reason,
        )


@dataclass
class RateLimiter:
    """One token bucket per API key, in this process (each instance admits its own share)."""

    events_per_s: float
    burst: int
    monotonic: Callable[[], float] = time.monotonic
    _buckets: dict[str, TokenBucket] = field(default_factory=dict)

    def admit(self, key_id: str, cost: int) -> float:
        """0 when admitted (tokens spent); else the seconds to wait before retrying."""
        now = self.monotonic()
        bucket = self._buckets.get(key_id) or TokenBucket.full(self.events_per_s, self.burst, now)
        bucket, wait = bucket.take(cost, now)
        self._buckets[key_id] = bucket
        return wait


@dataclass
class IngestHandler:
    catalogue: CachedCatalogue
    receipts: ReceiptStore
    publisher: KafkaEventPublisher
    metrics: IngestMetrics
    clock: Callable[[], datetime]
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
        except PyMongoError as error:
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
            document = (measures if is_measure_event else items).get(target)
            facts = (
                None
                if document is None
                else facts_from_catalogue(document, "measure" if is_measure_event else "item")
            )
            violations = check_event(
                event,
                item=facts,
                owners=owners_from_catalogue(document),
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
        except PyMongoError as error:
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
        except PyMongoError as error:
            # The failed claims turn stale after the takeover age and are published by a retry
            # then. The acknowledged events are in Kafka: they are still answered as accepted.
            log.error("receipt_release_failed", error=repr(error), claims=len(failed))
            return
        if acked:
            try:
                await self.receipts.accept(batch_id, acked, now)
            except PyMongoError as error:
                log.error("receipt_accept_failed", error=repr(error), batch=batch_id)

"""In-memory implementations of ingest's ports (services/ingest/ports.py), for the unit tier.

Small but honest: the receipt store follows the same claim protocol as the MongoDB one
(domain/receipts.py), the ownership records the same set/reset/history rules as
shared/catalogue/overrides.py, and each passes the contract tests the real adapters pass
(tests/support/contracts/ingest.py). `down = True` on a store makes it raise
`StorageUnavailable`, as the real adapters do when MongoDB does not answer.
"""

from __future__ import annotations

import itertools
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from services.ingest.domain.keys import KeyRecord, issue_key
from services.ingest.domain.receipts import ClaimState, batch_time, claim_state
from services.ingest.ports import CatalogueEntry, Claim, Claimed, ItemOwnership
from services.ingest.service.errors import StorageUnavailable
from shared.catalogue.ownership_changes import OwnershipChange, UnknownItemError, iso_time
from shared.events.cloudevents import CloudEvent
from shared.events.kafka_binding import EncodedRecord

# Attempts after which an event is reported in flight (as adapters/receipts.py).
MAX_ATTEMPTS = 64


@dataclass
class _Down:
    down: bool = field(default=False, kw_only=True)

    def _check(self) -> None:
        if self.down:
            raise StorageUnavailable("the in-memory store is down")


@dataclass
class MemoryCatalogue(_Down):
    items_by_id: dict[str, CatalogueEntry] = field(default_factory=dict)
    measures_by_id: dict[str, CatalogueEntry] = field(default_factory=dict)
    invalidations: int = 0

    async def items(self, item_ids: Iterable[str]) -> dict[str, CatalogueEntry]:
        self._check()
        return {i: self.items_by_id[i] for i in set(item_ids) if i in self.items_by_id}

    async def measures(self, measure_ids: Iterable[str]) -> dict[str, CatalogueEntry]:
        self._check()
        return {i: self.measures_by_id[i] for i in set(measure_ids) if i in self.measures_by_id}

    def invalidate(self) -> None:
        self.invalidations += 1


@dataclass
class MemoryReceiptStore(_Down):
    takeover_after: timedelta = timedelta(seconds=30)
    claims: dict[str, str] = field(default_factory=dict)  # claim id -> batch id
    released: set[str] = field(default_factory=set)
    accepted_batches: set[str] = field(default_factory=set)

    async def claim(
        self, events: Sequence[CloudEvent], batch_id: str, now: datetime
    ) -> list[Claimed]:
        self._check()
        return [self._claim_one(event, batch_id, now) for event in events]

    def _claim_one(self, event: CloudEvent, batch_id: str, now: datetime) -> Claimed:
        for attempt in range(MAX_ATTEMPTS):
            claim = f"{event.dedup_key}\x1e{attempt}"
            owner = self.claims.get(claim)
            if owner is None:
                self.claims[claim] = batch_id
                return Claimed(Claim.NEW, claim)
            state = claim_state(
                released=claim in self.released,
                batch_accepted=owner in self.accepted_batches,
                claimed_at=batch_time(owner),
                now=now,
                takeover_after=self.takeover_after,
            )
            if state is ClaimState.ACCEPTED:
                return Claimed(Claim.DUPLICATE)
            if state is ClaimState.PENDING:
                return Claimed(Claim.IN_FLIGHT)
        return Claimed(Claim.IN_FLIGHT)

    async def release(self, claim_ids: Sequence[str], now: datetime) -> None:
        self._check()
        self.released.update(claim_ids)

    async def accept(self, batch_id: str, events: int, now: datetime) -> None:
        self._check()
        self.accepted_batches.add(batch_id)


@dataclass
class MemoryKeyStore(_Down):
    """Both the key store and the lookup authentication reads (there is no cache to go stale)."""

    records: dict[str, KeyRecord] = field(default_factory=dict)

    async def create(
        self, ministry: str, now: datetime, label: str | None = None
    ) -> tuple[str, KeyRecord]:
        self._check()
        full, record = issue_key(ministry, now, label)
        self.records[record.key_id] = record
        return full, record

    async def get(self, key_id: str) -> KeyRecord | None:
        self._check()
        return self.records.get(key_id)

    async def list(self, ministry: str | None = None) -> list[KeyRecord]:
        self._check()
        found = [r for r in self.records.values() if not ministry or r.ministry == ministry]
        return sorted(found, key=lambda r: (r.ministry, r.created_at))

    async def revoke(self, key_id: str, now: datetime) -> KeyRecord | None:
        self._check()
        record = self.records.get(key_id)
        if record is not None and record.revoked_at is None:
            record = self.records[key_id] = replace(record, revoked_at=now)
        return record

    def invalidate(self, key_id: str) -> None:
        """Nothing is cached."""


@dataclass
class MemoryEventPublisher:
    """Acknowledges every record (kept in `records`) unless `refuse` is set."""

    records: list[EncodedRecord] = field(default_factory=list)
    refuse: bool = False

    async def publish_many(self, records: Sequence[EncodedRecord]) -> list[BaseException | None]:
        if self.refuse:
            return [ConnectionError("the in-memory broker refuses")] * len(records)
        self.records.extend(records)
        return [None] * len(records)


@dataclass
class _Override:
    owners: list[str]
    reason: str
    changed_by: str
    changed_at: datetime


@dataclass
class MemoryOwnershipRecords(_Down):
    """Owners of the items of `catalogue` (the release's, as it holds them when created), with
    run-time overrides written through to it, as the MongoDB store rewrites the item."""

    catalogue: MemoryCatalogue = field(default_factory=MemoryCatalogue)
    changes: list[OwnershipChange] = field(default_factory=list)
    propagated: set[str] = field(default_factory=set)
    _release: dict[str, list[str]] = field(default_factory=dict, init=False)
    _overrides: dict[str, _Override] = field(default_factory=dict, init=False)
    _ids: itertools.count[int] = field(default_factory=itertools.count, init=False)

    def __post_init__(self) -> None:
        self._release = {i: sorted(e.owners) for i, e in self.catalogue.items_by_id.items()}

    async def set_owners(
        self, item_id: str, owners: Sequence[str], *, reason: str, changed_by: str, now: datetime
    ) -> OwnershipChange:
        codes = list(dict.fromkeys(owners))
        if not codes:
            raise ValueError("an item needs at least one owner")
        previous = await self._owners(item_id)
        self._overrides[item_id] = _Override(codes, reason, changed_by, now)
        return self._record(item_id, "set", codes, previous, reason, changed_by, now)

    async def reset_owners(
        self, item_id: str, *, reason: str, changed_by: str, now: datetime
    ) -> OwnershipChange:
        previous = await self._owners(item_id)
        self._overrides.pop(item_id, None)
        owners = list(self._release[item_id])
        return self._record(item_id, "reset", owners, previous, reason, changed_by, now)

    async def item(self, item_id: str) -> ItemOwnership:
        owners = await self._owners(item_id)
        override = self._overrides.get(item_id)
        return ItemOwnership(
            owners=owners,
            catalogue_owners=list(self._release[item_id]),
            basis=[],
            override=None
            if override is None
            else {
                "owners": list(override.owners),
                "reason": override.reason,
                "changed_by": override.changed_by,
                "changed_at": iso_time(override.changed_at),
            },
        )

    async def history(self, item_id: str) -> list[OwnershipChange]:
        self._check()
        return [c for c in self.changes if c.item_id == item_id]

    async def unpropagated(self) -> list[OwnershipChange]:
        self._check()
        return [c for c in self.changes if c.change_id not in self.propagated]

    async def mark_propagated(self, change_ids: Sequence[str], now: datetime) -> None:
        self._check()
        self.propagated.update(change_ids)

    async def _owners(self, item_id: str) -> list[str]:
        self._check()
        if item_id not in self._release:
            raise UnknownItemError(item_id)
        override = self._overrides.get(item_id)
        return list(override.owners) if override else list(self._release[item_id])

    def _record(
        self,
        item_id: str,
        action: str,
        owners: list[str],
        previous: list[str],
        reason: str,
        changed_by: str,
        now: datetime,
    ) -> OwnershipChange:
        entry = self.catalogue.items_by_id[item_id]
        self.catalogue.items_by_id[item_id] = replace(entry, owners=frozenset(owners))
        change = OwnershipChange(
            item_id=item_id,
            action=action,
            owners=owners,
            previous=previous,
            catalogue_owners=list(self._release[item_id]),
            reason=reason,
            changed_by=changed_by,
            changed_at=now,
            # Ordered like the MongoDB store's ObjectIds: increasing in the order recorded.
            change_id=f"{next(self._ids):08x}{secrets.token_hex(8)}",
        )
        self.changes.append(change)
        return change

"""What the ingest use cases (services/ingest/service/) need from the outside world, and the
typed records they exchange with it. The MongoDB and Kafka implementations are in adapters/,
small in-memory ones for the unit tier in adapters/memory.py; both pass the same contract tests
(tests/support/contracts/ingest.py).

A store that cannot be reached raises `StorageUnavailable` (service/errors.py): the adapter
translates its driver's error, so no use case knows which database it talks to.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol

from services.ingest.domain.keys import KeyRecord
from shared.catalogue.ownership_changes import OwnershipChange
from shared.events.cloudevents import CloudEvent
from shared.events.kafka_binding import EncodedRecord
from shared.events.validation import ItemFacts

# --- the catalogue ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CatalogueEntry:
    """What the checks need of a KPI, milestone or measure: its facts and who may report it."""

    facts: ItemFacts
    owners: frozenset[str]


class Catalogue(Protocol):
    async def items(self, item_ids: Iterable[str]) -> Mapping[str, CatalogueEntry]:
        """The KPIs and milestones among `item_ids` (absent ids are not in the catalogue)."""
        ...

    async def measures(self, measure_ids: Iterable[str]) -> Mapping[str, CatalogueEntry]: ...

    def invalidate(self) -> None:
        """Forget anything cached: the next read sees the store (after an ownership change)."""
        ...


# --- deduplication receipts (domain/receipts.py) ---------------------------------------------


class Claim(StrEnum):
    NEW = "new"
    DUPLICATE = "duplicate"
    IN_FLIGHT = "in_flight"


@dataclass(frozen=True, slots=True)
class Claimed:
    claim: Claim
    claim_id: str | None = None  # set for NEW: what to release if the publish fails


class ReceiptStore(Protocol):
    async def claim(
        self, events: Sequence[CloudEvent], batch_id: str, now: datetime
    ) -> list[Claimed]:
        """Claim every event (by source + id) for this batch; one answer per event, in order.
        NEW ones must be published by the caller, then released or their batch accepted."""
        ...

    async def release(self, claim_ids: Sequence[str], now: datetime) -> None:
        """The claims' events did not reach Kafka: a later submission may publish them."""
        ...

    async def accept(self, batch_id: str, events: int, now: datetime) -> None:
        """The batch reached Kafka: its claims not released are duplicates from now on."""
        ...


# --- API keys ---------------------------------------------------------------------------------


class KeyStore(Protocol):
    async def create(
        self, ministry: str, now: datetime, label: str | None = None
    ) -> tuple[str, KeyRecord]:
        """A new key for the ministry: (the full key, shown once; its stored record)."""
        ...

    async def get(self, key_id: str) -> KeyRecord | None: ...

    async def list(self, ministry: str | None = None) -> list[KeyRecord]:
        """By ministry, then creation time."""
        ...

    async def revoke(self, key_id: str, now: datetime) -> KeyRecord | None:
        """Idempotent: an already revoked key keeps its first revocation time."""
        ...


class KeyLookup(Protocol):
    """Key records as authentication reads them (possibly cached)."""

    async def get(self, key_id: str) -> KeyRecord | None: ...

    def invalidate(self, key_id: str) -> None:
        """Forget the key (revoked here): the next read sees the store."""
        ...


# --- the events topic -------------------------------------------------------------------------


class EventPublisher(Protocol):
    async def publish_many(self, records: Sequence[EncodedRecord]) -> list[BaseException | None]:
        """One result per record, in order: None once the broker acknowledged it, else why not."""
        ...


# --- who may report an item (shared/catalogue/overrides.py) -----------------------------------


@dataclass(frozen=True, slots=True)
class ItemOwnership:
    """An item's owners as loaded: in force, per the release (with their basis), the override."""

    owners: list[str]
    catalogue_owners: list[str]
    basis: list[dict[str, Any]]
    override: dict[str, Any] | None


class OwnershipRecords(Protocol):
    async def set_owners(
        self, item_id: str, owners: Sequence[str], *, reason: str, changed_by: str, now: datetime
    ) -> OwnershipChange:
        """Raises `UnknownItemError`. Recorded unpropagated."""
        ...

    async def reset_owners(
        self, item_id: str, *, reason: str, changed_by: str, now: datetime
    ) -> OwnershipChange: ...

    async def item(self, item_id: str) -> ItemOwnership:
        """Raises `UnknownItemError`."""
        ...

    async def history(self, item_id: str) -> list[OwnershipChange]:
        """Oldest first."""
        ...

    async def unpropagated(self) -> list[OwnershipChange]:
        """Recorded, not yet published; oldest first (the order to publish in)."""
        ...

    async def mark_propagated(self, change_ids: Sequence[str], now: datetime) -> None: ...

"""What every implementation of ingest's ports must do (services/ingest/ports.py).

Each class is run through subclasses only (pytest collects ``Test*`` classes): in
tests/unit/ingest/test_memory_adapters.py on the in-memory adapters, and in
tests/integration/test_ingest_adapters_contract.py on MongoDB (FerretDB) and Kafka. A subclass
provides the fixture named after the port, built on the data given here.
"""

from __future__ import annotations

import secrets
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from services.ingest.domain.receipts import new_batch_id
from services.ingest.ports import Catalogue as CataloguePort
from services.ingest.ports import (
    CatalogueEntry,
    Claim,
    EventPublisher,
    KeyStore,
    OwnershipRecords,
    ReceiptStore,
)
from shared.catalogue.ownership_changes import UnknownItemError, iso_time
from shared.events.cloudevents import CloudEvent
from shared.events.contracts import ministry_event_adapter
from shared.events.kafka_binding import EncodedRecord
from shared.events.validation import ItemFacts, as_of_floor

NOW = datetime(2024, 4, 1, 9, 0, tzinfo=UTC)
# The takeover age the `receipt_store` fixture must be built with.
TAKEOVER = timedelta(seconds=20)

# The catalogue the `catalogue` fixture must hold: as documents (what `shinchoku catalogue load`
# writes) and as the entries a reader must get back.
ITEM_DOCUMENTS: list[dict[str, Any]] = [
    {
        "_id": "kpi.contract-coverage",
        "kind": "kpi",
        "unit": "%",
        "ministries": ["mic", "digital"],
        "state": "active",
        "baseline": {"as_of": "2021-03-31", "value": 10.0},
    },
    {"_id": "ms.contract-renewal", "kind": "milestone", "ministries": ["moj"], "state": "retired"},
]
MEASURE_DOCUMENTS: list[dict[str, Any]] = [
    {"_id": "m.contract-support", "ministries": ["digital"], "state": "active"},
]
ITEM_ENTRIES = {
    "kpi.contract-coverage": CatalogueEntry(
        ItemFacts("kpi.contract-coverage", "kpi", "%", as_of_floor=as_of_floor(date(2021, 3, 31))),
        frozenset({"mic", "digital"}),
    ),
    "ms.contract-renewal": CatalogueEntry(
        ItemFacts("ms.contract-renewal", "milestone", retired=True), frozenset({"moj"})
    ),
}
MEASURE_ENTRIES = {
    "m.contract-support": CatalogueEntry(
        ItemFacts("m.contract-support", "measure"), frozenset({"digital"})
    ),
}

# The items the `ownership_records` fixture must hold, with the release's (single) owner.
OWNED_ITEM, OWNED_BY = "kpi.contract-owned", "mic"
OTHER_ITEM, OTHER_BY = "kpi.contract-other", "digital"


def event(event_id: str, source: str = "/ministries/mic") -> CloudEvent:
    parsed: CloudEvent = ministry_event_adapter.validate_python(
        {
            "specversion": "1.0",
            "id": event_id,
            "source": source,
            "type": "shinchoku.measure.assessed.v1",
            "subject": "m.x",
            "time": NOW,
            "data": {"measure_id": "m.x", "rating": "on_track", "as_of": "2024-03-31"},
        }
    )
    return parsed


class ReceiptStoreContract:
    async def test_claims_follow_the_receipt_protocol(self, receipt_store: ReceiptStore) -> None:
        """New → in flight while pending → duplicate once accepted; a released claim and a
        stale one may be claimed again (next attempt); an event of an accepted batch whose own
        claim was released is not a duplicate."""
        prefix = secrets.token_hex(4)
        a, b, c = (event(f"{prefix}-{name}") for name in "abc")
        first = new_batch_id(NOW)
        claims = await receipt_store.claim([a, b, c], first, NOW)
        assert [x.claim for x in claims] == [Claim.NEW] * 3

        later = NOW + timedelta(seconds=1)
        pending = await receipt_store.claim([a], new_batch_id(later), later)
        assert pending[0].claim is Claim.IN_FLIGHT

        failed = claims[2].claim_id
        assert failed is not None
        await receipt_store.release([failed], NOW)
        await receipt_store.accept(first, 2, NOW)
        later = NOW + timedelta(seconds=2)
        again = await receipt_store.claim([a, b, c], new_batch_id(later), later)
        assert [x.claim for x in again] == [Claim.DUPLICATE, Claim.DUPLICATE, Claim.NEW]
        assert again[2].claim_id is not None
        assert again[2].claim_id.endswith("\x1e1")

        later = NOW + TAKEOVER + timedelta(seconds=3)
        stale = await receipt_store.claim([c], new_batch_id(later), later)
        assert stale[0].claim is Claim.NEW
        assert stale[0].claim_id is not None
        assert stale[0].claim_id.endswith("\x1e2")

    async def test_the_same_event_twice_in_one_batch_is_claimed_once(
        self, receipt_store: ReceiptStore
    ) -> None:
        """The second copy finds the first's claim pending: in flight, never published twice."""
        twice = event(secrets.token_hex(6))
        claims = await receipt_store.claim([twice, twice], new_batch_id(NOW), NOW)
        assert [x.claim for x in claims] == [Claim.NEW, Claim.IN_FLIGHT]

    async def test_the_source_is_part_of_the_identity(self, receipt_store: ReceiptStore) -> None:
        """The same id from another source is another event."""
        event_id = secrets.token_hex(6)
        batch = new_batch_id(NOW)
        await receipt_store.claim([event(event_id)], batch, NOW)
        await receipt_store.accept(batch, 1, NOW)
        later = NOW + timedelta(seconds=1)
        claims = await receipt_store.claim(
            [event(event_id), event(event_id, "/ministries/digital")], new_batch_id(later), later
        )
        assert [x.claim for x in claims] == [Claim.DUPLICATE, Claim.NEW]

    async def test_nothing_to_claim_or_release_is_nothing(
        self, receipt_store: ReceiptStore
    ) -> None:
        assert await receipt_store.claim([], new_batch_id(NOW), NOW) == []
        await receipt_store.release([], NOW)


class KeyStoreContract:
    async def test_a_created_key_is_found_by_its_id_without_its_secret(
        self, key_store: KeyStore
    ) -> None:
        """The full key is returned once; the stored record holds a hash, not the secret."""
        full, record = await key_store.create("mic", NOW, "statistics bureau")
        assert full.startswith(f"shk_{record.key_id}_")
        secret = full.removeprefix(f"shk_{record.key_id}_")
        found = await key_store.get(record.key_id)
        assert found is not None
        assert (found.key_id, found.ministry, found.label) == (
            record.key_id,
            "mic",
            "statistics bureau",
        )
        assert found.active
        assert secret not in found.secret_sha256
        assert found.secret_sha256 == record.secret_sha256

    async def test_an_unknown_key_is_none(self, key_store: KeyStore) -> None:
        assert await key_store.get("000000000000") is None
        assert await key_store.revoke("000000000000", NOW) is None

    async def test_keys_are_listed_by_ministry_then_age(self, key_store: KeyStore) -> None:
        _, older = await key_store.create("moj", NOW)
        _, newer = await key_store.create("moj", NOW + timedelta(seconds=1))
        _, other = await key_store.create("mic", NOW)
        assert [r.key_id for r in await key_store.list("moj")] == [older.key_id, newer.key_id]
        listed = [r.key_id for r in await key_store.list()]
        assert listed.index(other.key_id) < listed.index(older.key_id) < listed.index(newer.key_id)

    async def test_revoking_is_idempotent_and_keeps_the_first_time(
        self, key_store: KeyStore
    ) -> None:
        _, record = await key_store.create("mic", NOW)
        first = await key_store.revoke(record.key_id, NOW + timedelta(seconds=1))
        second = await key_store.revoke(record.key_id, NOW + timedelta(seconds=2))
        assert first is not None
        assert second is not None
        assert not first.active
        assert not second.active
        assert first.revoked_at == second.revoked_at
        found = await key_store.get(record.key_id)
        assert found is not None
        assert not found.active


class CatalogueContract:
    async def test_items_and_measures_are_read_as_entries(self, catalogue: CataloguePort) -> None:
        """Facts and owners of what was asked for; unknown ids and the other kind are absent."""
        items = await catalogue.items([*ITEM_ENTRIES, "kpi.no-such", "m.contract-support"])
        assert dict(items) == ITEM_ENTRIES
        measures = await catalogue.measures(["m.contract-support", "kpi.contract-coverage"])
        assert dict(measures) == MEASURE_ENTRIES

    async def test_asking_for_nothing_reads_nothing(self, catalogue: CataloguePort) -> None:
        assert dict(await catalogue.items([])) == {}
        catalogue.invalidate()
        assert dict(await catalogue.measures([])) == {}


class EventPublisherContract:
    async def test_every_record_is_acknowledged(self, event_publisher: EventPublisher) -> None:
        key = b"kpi.contract-coverage"
        records = [
            EncodedRecord(key=key, value=b'{"n": %d}' % n, headers=[("n", b"%d" % n)])
            for n in range(3)
        ]
        assert await event_publisher.publish_many(records) == [None, None, None]
        assert await event_publisher.publish_many([]) == []


class OwnershipRecordsContract:
    async def test_a_set_is_in_force_and_recorded_then_a_reset_returns_the_release(
        self, ownership_records: OwnershipRecords
    ) -> None:
        changed = await ownership_records.set_owners(
            OWNED_ITEM, ["digital", "mic", "digital"], reason="co-report", changed_by="ops", now=NOW
        )
        assert (changed.action, changed.owners, changed.previous, changed.catalogue_owners) == (
            "set",
            ["digital", "mic"],
            [OWNED_BY],
            [OWNED_BY],
        )
        assert changed.change_id
        item = await ownership_records.item(OWNED_ITEM)
        assert (item.owners, item.catalogue_owners) == (["digital", "mic"], [OWNED_BY])
        assert item.override == {
            "owners": ["digital", "mic"],
            "reason": "co-report",
            "changed_by": "ops",
            "changed_at": iso_time(NOW),
        }
        later = NOW + timedelta(seconds=1)
        reset = await ownership_records.reset_owners(
            OWNED_ITEM, reason="back", changed_by="ops", now=later
        )
        assert (reset.action, reset.owners, reset.previous) == (
            "reset",
            [OWNED_BY],
            ["digital", "mic"],
        )
        item = await ownership_records.item(OWNED_ITEM)
        assert (item.owners, item.override) == ([OWNED_BY], None)
        history = await ownership_records.history(OWNED_ITEM)
        assert [(c.change_id, c.action, c.changed_at) for c in history] == [
            (changed.change_id, "set", NOW),
            (reset.change_id, "reset", later),
        ]
        assert await ownership_records.history(OTHER_ITEM) == []

    async def test_changes_wait_to_be_propagated_oldest_first(
        self, ownership_records: OwnershipRecords
    ) -> None:
        first = await ownership_records.set_owners(
            OWNED_ITEM, ["moj"], reason="first", changed_by="ops", now=NOW
        )
        second = await ownership_records.set_owners(
            OTHER_ITEM, ["moj"], reason="second", changed_by="ops", now=NOW + timedelta(seconds=1)
        )
        assert [c.change_id for c in await ownership_records.unpropagated()] == [
            first.change_id,
            second.change_id,
        ]
        await ownership_records.mark_propagated([first.change_id], NOW)
        assert [c.change_id for c in await ownership_records.unpropagated()] == [second.change_id]
        await ownership_records.mark_propagated([], NOW)

    async def test_an_unknown_item_is_refused(self, ownership_records: OwnershipRecords) -> None:
        with pytest.raises(UnknownItemError):
            await ownership_records.item("kpi.no-such-item")
        with pytest.raises(UnknownItemError):
            await ownership_records.set_owners(
                "kpi.no-such-item", ["mic"], reason="x", changed_by="ops", now=NOW
            )
        with pytest.raises(UnknownItemError):
            await ownership_records.reset_owners(
                "kpi.no-such-item", reason="x", changed_by="ops", now=NOW
            )
        assert await ownership_records.unpropagated() == []

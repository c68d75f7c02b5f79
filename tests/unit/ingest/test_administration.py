"""Authentication, key administration, ownership changes and rate limiting on the in-memory
adapters, built by the composition root as the service builds them."""

from __future__ import annotations

import json

import pytest

from services.ingest.service.authentication import AuthFailure, Principal
from services.ingest.service.ownership_propagation import OwnershipNotPropagated
from services.ingest.service.submission import Outcome
from shared.catalogue.ownership_changes import UnknownItemError
from tests.support.ingest_memory import PERCENT_KPI, kpi_observed, memory_ingest

# --- authentication and keys ------------------------------------------------------------------


async def test_a_created_key_authenticates_as_its_ministry_until_revoked() -> None:
    ingest = memory_ingest()
    full, record = await ingest.service.key_admin.create("mic", "bureau")
    authenticate = ingest.service.authenticator.authenticate
    assert await authenticate(full) == Principal(key_id=record.key_id, ministry="mic")
    revoked = await ingest.service.key_admin.revoke(record.key_id)
    assert revoked is not None
    assert revoked.revoked_at == ingest.clock.now
    assert await authenticate(full) is AuthFailure.REVOKED


async def test_refused_keys_are_told_apart_only_in_the_failure_reason() -> None:
    """Missing, malformed, unknown, and a known id with a wrong secret (UNKNOWN: the answer
    must not confirm the key id)."""
    ingest = memory_ingest()
    _, record = await ingest.service.key_admin.create("mic", None)
    authenticate = ingest.service.authenticator.authenticate
    assert await authenticate(None) is AuthFailure.MISSING
    assert await authenticate("not-a-key") is AuthFailure.MALFORMED
    assert await authenticate(f"shk_000000000000_{'x' * 43}") is AuthFailure.UNKNOWN
    assert await authenticate(f"shk_{record.key_id}_{'x' * 43}") is AuthFailure.UNKNOWN
    await ingest.service.key_admin.revoke(record.key_id)
    assert await authenticate(f"shk_{record.key_id}_{'x' * 43}") is AuthFailure.UNKNOWN


async def test_keys_are_listed_per_ministry_and_revoking_twice_keeps_the_first_time() -> None:
    ingest = memory_ingest()
    admin = ingest.service.key_admin
    _, first = await admin.create("mic", None)
    _, second = await admin.create("moj", None)
    assert [r.key_id for r in await admin.list("moj")] == [second.key_id]
    assert {r.key_id for r in await admin.list(None)} == {first.key_id, second.key_id}
    revoked = await admin.revoke(first.key_id)
    ingest.clock.advance(seconds=5)
    again = await admin.revoke(first.key_id)
    assert revoked is not None
    assert again is not None
    assert again.revoked_at == revoked.revoked_at
    assert await admin.revoke("000000000000") is None


# --- ownership --------------------------------------------------------------------------------


async def test_an_ownership_change_is_published_and_in_force_at_once() -> None:
    """The change is on the topic (keyed by the item) before the catalogue cache is dropped;
    the new owner may report at once, the former one is refused."""
    ingest = memory_ingest()
    admin = ingest.service.ownership_admin
    change = await admin.set(PERCENT_KPI, ["moj"], "moj took it over", "ops: test")
    assert (change.owners, change.previous) == (["moj"], ["digital", "mic"])
    (record,) = ingest.publisher.records
    assert record.key == PERCENT_KPI.encode()
    assert json.loads(record.value)["id"] == f"owners:{change.change_id}"
    assert ingest.catalogue.invalidations == 1
    assert await ingest.ownership.unpropagated() == []

    submit = ingest.service.submission.submit
    moj, digital = Principal("0123456789ab", "moj"), Principal("a1b2c3d4e5f6", "digital")
    (accepted,) = await submit([kpi_observed(ingest.clock, ministry="moj")], moj)
    (refused,) = await submit([kpi_observed(ingest.clock, event_id="e-2")], digital)
    assert accepted.outcome is Outcome.ACCEPTED
    assert (refused.outcome, refused.reason) == (Outcome.REJECTED, "wrong_ministry")

    item, history = await admin.view(PERCENT_KPI)
    assert (item.owners, item.override is not None) == (["moj"], True)
    assert [c.change_id for c in history] == [change.change_id]


async def test_a_change_kafka_refused_is_recorded_in_force_and_published_by_the_next_round() -> (
    None
):
    ingest = memory_ingest()
    ingest.publisher.refuse = True
    with pytest.raises(OwnershipNotPropagated) as refused:
        await ingest.service.ownership_admin.reset(PERCENT_KPI, "back", "ops: test")
    assert ingest.catalogue.invalidations == 1
    (pending,) = await ingest.ownership.unpropagated()
    assert pending.change_id == refused.value.change_id
    assert await ingest.service.propagator.round() is False  # logged, retried later
    ingest.publisher.refuse = False
    await ingest.service.propagator.round()
    assert await ingest.ownership.unpropagated() == []
    assert len(ingest.publisher.records) == 1


async def test_an_unknown_item_cannot_be_changed_or_viewed() -> None:
    ingest = memory_ingest()
    with pytest.raises(UnknownItemError):
        await ingest.service.ownership_admin.set("kpi.no-such", ["mic"], "why", "ops")
    with pytest.raises(UnknownItemError):
        await ingest.service.ownership_admin.view("kpi.no-such")
    assert ingest.publisher.records == []


# --- rate limiting ----------------------------------------------------------------------------


def test_each_key_has_its_own_bucket_refilled_at_the_configured_rate() -> None:
    ingest = memory_ingest(
        rate_limit={"events_per_s": 10, "burst": 20}, limits={"max_batch_events": 20}
    )
    limiter = ingest.service.rate_limiter
    assert limiter.admit("key-a", 20) == 0
    assert limiter.admit("key-a", 5) == pytest.approx(0.5)
    assert limiter.admit("key-b", 20) == 0
    ingest.monotonic.seconds += 0.5
    assert limiter.admit("key-a", 5) == 0

"""What an earlier claim of the same event means for a new submission."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.ingest.domain.receipts import ClaimState, claim_state

NOW = datetime(2024, 4, 1, 12, 0, tzinfo=UTC)
TAKEOVER = timedelta(seconds=20)


@pytest.mark.parametrize(
    ("released", "accepted", "age_s", "expected"),
    [
        (False, True, 1, ClaimState.ACCEPTED),
        (False, True, 3600, ClaimState.ACCEPTED),
        (True, True, 1, ClaimState.RELEASED),
        (True, False, 1, ClaimState.RELEASED),
        (False, False, 1, ClaimState.PENDING),
        (False, False, 19.9, ClaimState.PENDING),
        (False, False, 20, ClaimState.STALE),
        (False, False, 3600, ClaimState.STALE),
    ],
)
def test_claim_state(released: bool, accepted: bool, age_s: float, expected: ClaimState) -> None:
    """Released beats accepted (one failed event of an accepted batch); an unconfirmed claim
    older than the takeover age is stale; younger, it is pending."""
    state = claim_state(
        released=released,
        batch_accepted=accepted,
        claimed_at=NOW - timedelta(seconds=age_s),
        now=NOW,
        takeover_after=TAKEOVER,
    )
    assert state is expected


def test_a_batch_id_carries_its_claim_time_to_the_millisecond() -> None:
    """The claim time is read back from the batch id; ids made at one instant still differ."""
    from services.ingest.domain.receipts import batch_time, new_batch_id

    made = NOW + timedelta(microseconds=123_000)
    assert batch_time(new_batch_id(made)) == made
    assert new_batch_id(NOW) != new_batch_id(NOW)

"""API keys: format, parsing, constant-time verification, and which sources a key may use."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, cast

from services.ingest.domain.keys import (
    KeyRecord,
    check_source,
    hash_secret,
    new_key,
    parse_key,
    verify,
)
from services.ingest.service.authentication import AuthFailure, KeyAuthenticator

NOW = datetime(2024, 4, 1, tzinfo=UTC)


def record_for(full: str, *, revoked: bool = False) -> KeyRecord:
    presented = parse_key(full)
    assert presented is not None
    return KeyRecord(
        key_id=presented.key_id,
        ministry="mic",
        secret_sha256=hash_secret(presented.secret),
        created_at=NOW,
        revoked_at=NOW if revoked else None,
    )


def test_new_keys_parse_back_and_verify() -> None:
    """A fresh key reads shk_<12 hex>_<secret> and verifies against its stored hash."""
    full, presented = new_key()
    assert full.startswith(f"shk_{presented.key_id}_")
    assert parse_key(full) == presented
    assert verify(presented, record_for(full))


def test_keys_are_unique_and_the_hash_is_not_the_secret() -> None:
    """Two keys differ; the stored hash does not contain the secret."""
    (a, pa), (b, _) = new_key(), new_key()
    assert a != b
    assert pa.secret not in hash_secret(pa.secret)


def test_wrong_secret_revoked_or_unknown_keys_do_not_verify() -> None:
    """Another secret, a revoked record, or no record: not verified."""
    full, presented = new_key()
    other, _ = new_key()
    other_presented = parse_key(f"shk_{presented.key_id}_{other.split('_', 2)[2]}")
    assert other_presented is not None
    assert not verify(other_presented, record_for(full))
    assert not verify(presented, record_for(full, revoked=True))
    assert not verify(presented, None)


def test_malformed_keys_are_refused() -> None:
    """Anything not shaped like a key is not parsed."""
    for raw in ["", "shk_", "shk_XYZ_abc", "sk_0123456789ab_" + "a" * 43, "shk_0123456789ab_short"]:
        assert parse_key(raw) is None


def test_a_key_speaks_only_for_its_ministry() -> None:
    """The source must be /ministries/<the key's ministry>."""
    assert check_source("/ministries/mic", "mic") is None
    refused = check_source("/ministries/mhlw", "mic")
    assert refused is not None
    assert refused.field == "source"
    assert refused.code == "source_not_key_ministry"
    assert check_source("/services/kpi", "mic") is not None


class _Keys:
    """A KeyCache stand-in holding one record."""

    def __init__(self, record: KeyRecord) -> None:
        self.record = record

    async def get(self, key_id: str) -> KeyRecord | None:
        return self.record if key_id == self.record.key_id else None


async def test_revoked_is_told_only_to_the_holder_of_the_secret() -> None:
    """A revoked key id with a wrong secret fails as an unknown key (logs and metrics too);
    with its own secret, as revoked. The HTTP answer is the same generic 401 for both."""
    full, presented = new_key()
    keys = cast(Any, _Keys(record_for(full, revoked=True)))
    authenticator = KeyAuthenticator(keys=keys)
    wrong = f"shk_{presented.key_id}_{new_key()[1].secret}"
    assert await authenticator.authenticate(wrong) is AuthFailure.UNKNOWN
    assert await authenticator.authenticate(full) is AuthFailure.REVOKED

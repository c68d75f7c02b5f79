"""Who is calling: a presented API key checked against the stored record."""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum

from services.ingest.domain.keys import parse_key, verify
from services.ingest.ports import KeyLookup
from shared.logs import get_logger

log = get_logger(__name__)


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: an API key and the ministry it speaks for."""

    key_id: str
    ministry: str


class AuthFailure(StrEnum):
    MISSING = "missing"
    MALFORMED = "malformed"
    UNKNOWN = "unknown"
    REVOKED = "revoked"


@dataclass
class KeyAuthenticator:
    keys: KeyLookup

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

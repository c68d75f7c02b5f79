"""Ministry API keys: their format, their hash, and what a key allows. Pure (stdlib only).

A key reads ``shk_<key id>_<secret>``: the key id (12 lower-case hex characters) is public and
finds the stored record; the secret (43 URL-safe characters, 256 random bits) is shown once at
creation and stored only as its SHA-256. A salt or a slow hash adds nothing for a 256-bit random
secret (no dictionary to try), and a fast hash keeps authentication cheap on every request; the
comparison is constant-time.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime

from shared.events.contracts import ministry_code_of
from shared.events.validation import Violation

KEY_PREFIX = "shk"
_KEY = re.compile(r"^shk_(?P<key_id>[0-9a-f]{12})_(?P<secret>[A-Za-z0-9_-]{32,128})$")


@dataclass(frozen=True, slots=True)
class PresentedKey:
    key_id: str
    secret: str


@dataclass(frozen=True, slots=True)
class KeyRecord:
    key_id: str
    ministry: str
    secret_sha256: str
    created_at: datetime
    revoked_at: datetime | None = None
    label: str | None = None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


def new_key() -> tuple[str, PresentedKey]:
    """A fresh key: (the full key string to hand out once, its parts)."""
    presented = PresentedKey(key_id=secrets.token_hex(6), secret=secrets.token_urlsafe(32))
    return f"{KEY_PREFIX}_{presented.key_id}_{presented.secret}", presented


def issue_key(ministry: str, now: datetime, label: str | None = None) -> tuple[str, KeyRecord]:
    """A fresh key for the ministry: (the full key, to hand out once; the record to store)."""
    full, presented = new_key()
    record = KeyRecord(
        key_id=presented.key_id,
        ministry=ministry,
        secret_sha256=hash_secret(presented.secret),
        created_at=now,
        label=label,
    )
    return full, record


def parse_key(raw: str) -> PresentedKey | None:
    """The parts of a presented key, or None when it cannot be one of ours."""
    match = _KEY.match(raw)
    if match is None:
        return None
    return PresentedKey(key_id=match["key_id"], secret=match["secret"])


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def verify(presented: PresentedKey, record: KeyRecord | None) -> bool:
    """True when the key exists, is not revoked and its secret matches (constant-time)."""
    if record is None or not record.active or record.key_id != presented.key_id:
        return False
    return hmac.compare_digest(hash_secret(presented.secret), record.secret_sha256)


def check_source(source: str, key_ministry: str) -> Violation | None:
    """A key speaks for one ministry: the event's source must be ``/ministries/<that code>``."""
    code = ministry_code_of(source)
    if code == key_ministry:
        return None
    return Violation(
        "source",
        f"this API key belongs to ministry {key_ministry!r}; "
        f"the source must be '/ministries/{key_ministry}', not {source!r}",
        "source_not_key_ministry",
    )

"""The two paging conventions of every list endpoint (documented in docs/api.md).

- Collections (catalogue entries, subscriptions, silences, a subscription's deliveries and
  notifications): ``?limit=&offset=`` answered ``{"items", "total", "limit", "offset"}``;
  ``total`` counts every match over all pages.
- Append-only streams (status-transition exports, delivery attempts, operator events):
  ``?limit=&after=`` answered ``{"items", "next_after"}``; pass ``next_after`` back as
  ``after`` for the next page, ``null`` at the end. The cursor is opaque: a stream grows while
  it is read, so a page never shifts under the reader the way an offset would.
"""

from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime

from shared.http.problems import FieldError, ValidationProblem

# Bounded: MongoDB refuses a skip beyond 8-byte integers (an unbounded offset was a 500).
MAX_OFFSET = 1_000_000


def encode_cursor(at: datetime, key: str) -> str:
    """The opaque cursor after the item at `at` with id `key` (newest-first streams)."""
    raw = json.dumps([at.isoformat(), key], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    """The (time, id) a cursor stands for; a 422 problem if it is not one we gave out."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        at, key = json.loads(raw)
        moment = datetime.fromisoformat(at)
        if not isinstance(key, str) or moment.tzinfo is None:
            raise ValueError(cursor)
    except (ValueError, TypeError, binascii.Error) as error:
        reason = "not a cursor this endpoint gave out (pass next_after back unchanged)"
        raise ValidationProblem(
            f"after: {reason}",
            errors=[FieldError(field="after", reason=reason)],
            extensions={"code": "invalid_cursor"},
        ) from error
    return moment, key

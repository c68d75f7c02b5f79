"""The demo receiver's Standard Webhooks verification, against the alerts service's signer and
the reference library."""

from __future__ import annotations

import base64
import json
import time
from datetime import UTC, datetime

import pytest
from standardwebhooks import Webhook

from demo.receiver import TOLERANCE_S, SignatureError, describe, verify
from services.alerts.domain.signing import new_secret, webhook_headers

BODY = json.dumps(
    {
        "type": "kpi.slipped",
        "timestamp": "2026-03-01T00:00:00+00:00",
        "data": {
            "kpi_id": "kpi.fibre-household-coverage",
            "changes": [
                {
                    "type": "kpi.slipped",
                    "kpi_id": "kpi.fibre-household-coverage",
                    "ministries": ["mic"],
                    "previous_status": "on_track",
                    "status": "at_risk",
                    "evaluated_on": "2026-03-01",
                    "explanation": {"message": "Latest value 62 is behind the plan 70."},
                }
            ],
        },
    }
).encode()


def test_a_delivery_signed_by_the_alerts_service_verifies() -> None:
    """The headers alerts sends (one secret, or two during a rotation) verify with either."""
    old, new = new_secret(), new_secret()
    now = int(time.time())
    headers = webhook_headers([old, new], "msg_1", now, BODY)
    assert verify(old, headers, BODY) == "msg_1"
    assert verify(new, headers, BODY) == "msg_1"


def test_a_delivery_signed_by_the_reference_library_verifies() -> None:
    """Standard Webhooks' own signer and this verifier agree."""
    secret = "whsec_" + base64.b64encode(b"k" * 32).decode()
    sent = datetime.now(UTC)
    signature = Webhook(secret).sign("msg_2", sent, BODY.decode())
    headers = {
        "webhook-id": "msg_2",
        "webhook-timestamp": str(int(sent.timestamp())),
        "webhook-signature": signature,
    }
    assert verify(secret, headers, BODY) == "msg_2"


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ("body", "no signature matches"),
        ("secret", "no signature matches"),
        ("timestamp", "more than"),
        ("missing", "missing"),
    ],
)
def test_a_tampered_stale_or_unsigned_delivery_is_rejected(change: str, reason: str) -> None:
    """Another body, another secret, an old timestamp or no signature: SignatureError."""
    secret = new_secret()
    sent = int(time.time()) - (TOLERANCE_S + 60 if change == "timestamp" else 0)
    headers = webhook_headers([secret], "msg_3", sent, BODY)
    body = BODY.replace(b"at_risk", b"on_track") if change == "body" else BODY
    if change == "secret":
        secret = new_secret()
    if change == "missing":
        del headers["webhook-signature"]
    with pytest.raises(SignatureError, match=reason):
        verify(secret, headers, body)


def test_a_delivery_prints_as_one_line_per_change() -> None:
    """The headline, then each change with its subject, ministries, transition and reason."""
    lines = describe(json.loads(BODY), message_id="msg_4", repeat=False)
    assert "kpi.slipped" in lines[0]
    assert "msg_4" in lines[0]
    assert "kpi.fibre-household-coverage (mic)  on_track -> at_risk" in lines[1]
    assert "behind the plan" in lines[2]

"""Signatures and bodies are what the official `standardwebhooks` library accepts."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from services.alerts.domain.notifications import NotificationKind
from services.alerts.domain.payloads import NotifiedChange, encode, headline, webhook_payload
from services.alerts.domain.signing import SECRET_PREFIX, new_secret, sign, webhook_headers
from shared.events.contracts import Status
from tests.unit.alerts.factories import T0, change

K = NotificationKind


def notified(
    nid: str, kind: K, status: Status, minutes: int = 0, previous: Status = Status.ON_TRACK
) -> NotifiedChange:
    return NotifiedChange(
        notification_id=nid,
        kind=kind,
        change=change(previous=previous, status=status, kpi_id=f"kpi.{nid}"),
        changed_at=T0 + timedelta(minutes=minutes),
        status_event_id=f"status:{nid}:1",
    )


def test_secrets_have_the_whsec_form() -> None:
    """Secrets are `whsec_` + base64 of 32 random bytes, and differ every time."""
    secret = new_secret()
    assert secret.startswith(SECRET_PREFIX)
    assert len(secret) == len(SECRET_PREFIX) + 44
    assert new_secret() != secret


@settings(max_examples=50)
@given(
    body=st.dictionaries(st.text(max_size=20), st.one_of(st.integers(), st.text(max_size=50))).map(
        lambda d: json.dumps(d, ensure_ascii=False, separators=(",", ":")).encode()
    ),
    message_id=st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789_", min_size=1, max_size=40),
)
def test_the_library_verifies_our_signatures(body: bytes, message_id: str) -> None:
    """Any JSON body and id signed by us is verified (and parsed) by standardwebhooks.Webhook."""
    secret = new_secret()
    headers = webhook_headers([secret], message_id, int(time.time()), body)
    assert Webhook(secret).verify(body, headers) == json.loads(body)


def test_our_signature_equals_the_library_signature() -> None:
    """Byte for byte, our `v1,` signature is the library's."""
    secret = new_secret()
    stamp = datetime.now(UTC).replace(microsecond=0)
    body = '{"type":"kpi.slipped"}'
    ours = sign(secret, "msg_1", int(stamp.timestamp()), body.encode())
    assert ours == Webhook(secret).sign("msg_1", stamp, body)


def test_rotation_overlap_both_secrets_verify_and_others_do_not() -> None:
    """During a rotation the header carries both signatures: a receiver with either secret
    verifies; a receiver with an unrelated secret does not."""
    old, new = new_secret(), new_secret()
    body = b'{"type":"kpi.slipped","timestamp":"x","data":{}}'
    headers = webhook_headers([old, new], "msg_rot", int(time.time()), body)
    assert len(headers["webhook-signature"].split(" ")) == 2
    Webhook(old).verify(body, headers)
    Webhook(new).verify(body, headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(new_secret()).verify(body, headers)


def test_tampered_body_fails_verification() -> None:
    """A changed byte invalidates the signature."""
    secret = new_secret()
    headers = webhook_headers([secret], "msg_t", int(time.time()), b'{"a":1}')
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(b'{"a":2}', headers)


def test_single_change_payload() -> None:
    """One change: Standard Webhooks {type, timestamp, data}, the change at data's top level,
    and data.changes with that one change."""
    item = notified("a", K.SLIPPED, Status.OFF_TRACK)
    payload = webhook_payload([item], api_url="http://kpi:8002/", subscription_id="sub_1")
    assert set(payload) == {"type", "timestamp", "data"}
    assert payload["type"] == "kpi.slipped"
    assert payload["timestamp"] == T0.isoformat()
    data = payload["data"]
    assert data["kpi_id"] == "kpi.a"
    assert data["status"] == "off_track"
    assert data["previous_status"] == "on_track"
    assert data["ministries"] == ["mic"]
    assert data["explanation"]["rule_id"] == "kpi.trajectory"
    assert data["link"] == "http://kpi:8002/v1/kpis/kpi.a"
    assert data["count"] == 1
    assert data["subscription_id"] == "sub_1"
    assert [c["kpi_id"] for c in data["changes"]] == ["kpi.a"]


def test_group_payload_headline_is_the_most_severe() -> None:
    """A group's type and top-level fields are its most severe change; all are listed."""
    items = [
        notified("rec", K.RECOVERED, Status.ON_TRACK, 0, previous=Status.OFF_TRACK),
        notified("slip", K.SLIPPED, Status.AT_RISK, 1),
        notified("due", K.OVERDUE, Status.OVERDUE, 2),
        notified("slip2", K.SLIPPED, Status.OFF_TRACK, 3),
    ]
    assert headline(items).notification_id == "due"
    payload = webhook_payload(items, api_url="http://k", subscription_id="s")
    assert payload["type"] == "kpi.overdue"
    assert payload["data"]["kpi_id"] == "kpi.due"
    assert payload["data"]["count"] == 4
    types = [(c["notification_id"], c["type"]) for c in payload["data"]["changes"]]
    assert types == [
        ("due", "kpi.overdue"),
        ("rec", "kpi.recovered"),
        ("slip", "kpi.slipped"),
        ("slip2", "kpi.slipped"),
    ]


def test_recovery_only_group_headline_and_empty_group() -> None:
    """Among recoveries the latest heads the group; an empty group is an error."""
    items = [
        notified("r1", K.RECOVERED, Status.ON_TRACK, 0, previous=Status.AT_RISK),
        notified("r2", K.RECOVERED, Status.ON_TRACK, 5, previous=Status.AT_RISK),
    ]
    assert headline(items).notification_id == "r2"
    with pytest.raises(ValueError, match="at least one"):
        headline([])


def test_encoded_payload_is_minified_signed_json_the_library_parses() -> None:
    """The stored body is compact UTF-8 JSON that verifies and parses back unchanged."""
    item = notified("日本", K.STALE, Status.STALE)
    payload = webhook_payload([item], api_url="http://k", subscription_id="s")
    body = encode(payload)
    assert b": " not in body
    assert "日本".encode() in body
    secret = new_secret()
    headers = webhook_headers([secret], "msg_x", int(time.time()), body)
    assert Webhook(secret).verify(body, headers) == json.loads(body) == payload

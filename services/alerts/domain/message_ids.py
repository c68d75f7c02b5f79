"""Webhook message ids (`webhook-id`, Standard Webhooks style `msg_…`), kept for life."""

from __future__ import annotations

import hashlib
import secrets


def new_message_id() -> str:
    """A fresh `webhook-id` for a grouped delivery."""
    return "msg_" + secrets.token_hex(13)


def message_id_for(notification_id: str) -> str:
    """The `webhook-id` of a notification sent on its own at once (no grouping window):
    derived from its key, so a handler that stopped half-way recreates the same message."""
    return "msg_" + hashlib.sha256(notification_id.encode()).hexdigest()[:26]

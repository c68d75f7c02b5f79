"""Repeat reminders for a KPI that stays in a bad status. Pure.

A notification is sent once per subscription, KPI episode and kind. While the episode stays open
the subscription hears about it again only after ``interval`` (a setting, default 7 days), and
then every ``interval``; a recovery ends the reminders. An escalation to another kind within the
episode is a notification of its own and restarts the interval. A reminder reports the KPI's
current status, with the kind that status has (overdue, stale, otherwise slipped). An interval
of zero turns reminders off.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from services.alerts.domain.notifications import REMINDING_KINDS, NotificationKind
from shared.events.contracts import BAD_STATUSES, Status


def first_reminder_at(
    kind: NotificationKind, notified_at: datetime, interval: timedelta
) -> datetime | None:
    """When the first reminder of a new notification is due; None if it never reminds."""
    if kind not in REMINDING_KINDS or interval <= timedelta(0):
        return None
    return notified_at + interval


def following_reminder_at(due_at: datetime, now: datetime, interval: timedelta) -> datetime:
    """After a reminder due at `due_at` was sent at `now`: when the next one is due (never in
    the past, so a long outage yields one reminder, not a burst)."""
    following = due_at + interval
    while following <= now:
        following += interval
    return following


def reminder_kind(status: Status) -> NotificationKind | None:
    """The kind a reminder about a KPI now in `status` has; None when it is not bad."""
    if status not in BAD_STATUSES:
        return None
    if status is Status.OVERDUE:
        return NotificationKind.OVERDUE
    if status is Status.STALE:
        return NotificationKind.STALE
    return NotificationKind.SLIPPED

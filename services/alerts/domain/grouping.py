"""Grouping: the notifications of one subscription that arrive within a short window go out
as one delivery. Pure.

Per subscription, a window opens when the earliest waiting notification arrived and takes every
notification that arrived within ``window`` of it; the group is ready once the window has passed.
Notifications arriving later open the next window. A window of zero (or less) means "send
immediately": every notification is a group of its own and ready at once. A notification marked
``immediate`` (released from a silence, or redelivered) makes its group ready at once, taking
along whatever else of the subscription is waiting in that window.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True, slots=True)
class Waiting:
    """A notification recorded and waiting for its subscription's window to close."""

    id: str
    subscription_id: str
    arrived_at: datetime
    immediate: bool = False


@dataclass(frozen=True, slots=True)
class Group:
    subscription_id: str
    ids: tuple[str, ...]
    opened_at: datetime


def _windows(
    items: list[Waiting], window: timedelta, max_size: int
) -> list[tuple[datetime, list[Waiting]]]:
    """Split one subscription's waiting notifications (sorted) into consecutive windows."""
    windows: list[tuple[datetime, list[Waiting]]] = []
    for item in items:
        if windows:
            opened, members = windows[-1]
            if (
                window > timedelta(0)
                and item.arrived_at <= opened + window
                and len(members) < max_size
            ):
                members.append(item)
                continue
        windows.append((item.arrived_at, [item]))
    return windows


def ready_groups(
    waiting: Iterable[Waiting], *, now: datetime, window: timedelta, max_size: int = 50
) -> list[Group]:
    """The groups that should become deliveries now, oldest first within each subscription."""
    if max_size < 1:
        raise ValueError("max_size must be at least 1")
    by_subscription: dict[str, list[Waiting]] = defaultdict(list)
    for item in waiting:
        by_subscription[item.subscription_id].append(item)
    groups: list[Group] = []
    for subscription_id in sorted(by_subscription):
        items = sorted(by_subscription[subscription_id], key=lambda w: (w.arrived_at, w.id))
        for opened, members in _windows(items, window, max_size):
            full = len(members) >= max_size
            due = window <= timedelta(0) or now >= opened + window
            if due or full or any(m.immediate for m in members):
                groups.append(Group(subscription_id, tuple(m.id for m in members), opened))
    return groups


def next_ready_at(
    waiting: Iterable[Waiting], *, window: timedelta, max_size: int = 50
) -> datetime | None:
    """When the earliest still-open window closes (None when nothing waits)."""
    by_subscription: dict[str, list[Waiting]] = defaultdict(list)
    for item in waiting:
        by_subscription[item.subscription_id].append(item)
    closes: list[datetime] = []
    for items in by_subscription.values():
        items.sort(key=lambda w: (w.arrived_at, w.id))
        for opened, members in _windows(items, window, max_size):
            ready_now = len(members) >= max_size or any(m.immediate for m in members)
            closes.append(opened if ready_now else opened + window)
    return min(closes, default=None)

"""Which status changes are worth telling whom. Pure: no I/O.

A **slip** is a change to a worse status that is bad (at risk, off track, overdue, stale); an
``overdue`` or ``stale`` slip has a kind of its own. A **recovery** is a change from a bad status
back to on track or achieved.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from shared.events.contracts import (
    BAD_STATUSES,
    GOOD_STATUSES,
    KpiStatusChanged,
    Status,
    status_severity,
)


class NotificationKind(StrEnum):
    SLIPPED = "slipped"
    RECOVERED = "recovered"
    OVERDUE = "overdue"
    STALE = "stale"
    DIVERGENCE = "divergence"


# Webhook `type` per kind (Standard Webhooks: `<resource>.<event>`).
WEBHOOK_TYPES: dict[NotificationKind, str] = {
    NotificationKind.SLIPPED: "kpi.slipped",
    NotificationKind.RECOVERED: "kpi.recovered",
    NotificationKind.OVERDUE: "kpi.overdue",
    NotificationKind.STALE: "kpi.stale",
    NotificationKind.DIVERGENCE: "measure.divergence",
}
DEFAULT_KINDS = (
    NotificationKind.SLIPPED,
    NotificationKind.OVERDUE,
    NotificationKind.STALE,
    NotificationKind.DIVERGENCE,
)


def classify(change: KpiStatusChanged) -> NotificationKind | None:
    previous, new = change.previous_status, change.status
    if new in BAD_STATUSES:
        worse = previous is None or status_severity(new) > status_severity(previous)
        if not worse:
            return None
        if new is Status.OVERDUE:
            return NotificationKind.OVERDUE
        if new is Status.STALE:
            return NotificationKind.STALE
        return NotificationKind.SLIPPED
    if new in GOOD_STATUSES and previous in BAD_STATUSES:
        return NotificationKind.RECOVERED
    return None


class SubscriptionFilter(BaseModel):
    """Empty lists match everything."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    ministries: list[str] = Field(default_factory=list, description="Ministry codes, e.g. mic")
    measures: list[str] = Field(default_factory=list)
    kpis: list[str] = Field(default_factory=list, description="KPI or milestone ids")
    min_severity: Status = Field(
        default=Status.AT_RISK, description="Least severe new status that notifies (slips)"
    )
    kinds: list[NotificationKind] = Field(default_factory=lambda: list(DEFAULT_KINDS))


def matches(
    subscription: SubscriptionFilter, change: KpiStatusChanged, kind: NotificationKind
) -> bool:
    if kind not in subscription.kinds:
        return False
    if subscription.ministries and not set(subscription.ministries) & set(change.ministries):
        return False
    if subscription.measures and change.measure_id not in subscription.measures:
        return False
    if subscription.kpis and change.kpi_id not in subscription.kpis:
        return False
    if kind is NotificationKind.RECOVERED:
        return True
    return status_severity(change.status) >= status_severity(subscription.min_severity)


def notification_key(subscription_id: str, change: KpiStatusChanged, kind: NotificationKind) -> str:
    """One notification per subscription, KPI episode and kind: the deduplication key."""
    return f"{subscription_id}:{change.kpi_id}:{change.episode_id}:{kind.value}"


def select(
    subscriptions: Sequence[tuple[str, SubscriptionFilter]], change: KpiStatusChanged
) -> list[tuple[str, NotificationKind]]:
    kind = classify(change)
    if kind is None:
        return []
    return [(sub_id, kind) for sub_id, flt in subscriptions if matches(flt, change, kind)]

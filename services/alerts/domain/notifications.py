"""Which status changes are worth telling whom. Pure: no I/O.

A **slip** is a change to a worse status that is bad (at risk, off track, overdue, stale); an
``overdue`` or ``stale`` slip has a kind of its own. A **recovery** is a change from a bad status
back to on track or achieved; it is sent only to subscriptions whose filter asks for it.

A **divergence** is a ministry's self-assessment of a measure contradicting the measure's
computed status: the kpi service publishes ``shinchoku.measure.divergence_changed.v1`` when an
episode opens, changes level or closes; the opening of an episode notifies, like a slip.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, field_validator

from shared.events.contracts import (
    BAD_STATUSES,
    GOOD_STATUSES,
    KpiStatusChanged,
    MeasureDivergenceChanged,
    Status,
    status_severity,
)


class NotificationKind(StrEnum):
    SLIPPED = "slipped"
    RECOVERED = "recovered"
    OVERDUE = "overdue"
    STALE = "stale"
    DIVERGENCE = "divergence"


# Webhook `type` per kind (Standard Webhooks: hierarchical, full-stop delimited).
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
# Kinds that describe a KPI staying in a bad status, so a reminder can follow them.
REMINDING_KINDS = frozenset(
    {NotificationKind.SLIPPED, NotificationKind.OVERDUE, NotificationKind.STALE}
)


def classify(change: KpiStatusChanged) -> NotificationKind | None:
    """The kind of notification a status change is, or None when it is not worth one."""
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
    """What a subscription wants to hear about. Empty lists match everything; the dimensions
    are combined with AND, the values inside one list with OR."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    ministries: list[str] = Field(
        default_factory=list, description="Ministry codes, e.g. `mic`", examples=[["mic"]]
    )
    measures: list[str] = Field(default_factory=list, description="Measure ids")
    kpis: list[str] = Field(default_factory=list, description="KPI or milestone ids")
    min_severity: Status = Field(
        default=Status.AT_RISK,
        description="Least severe new status that notifies (recoveries always pass). Severity, "
        "worst first: overdue, off_track, stale, at_risk.",
    )
    kinds: list[NotificationKind] = Field(
        default_factory=lambda: list(DEFAULT_KINDS),
        min_length=1,
        description="Which kinds to receive. `recovered` only when named; `divergence`: a "
        "ministry's self-assessment of a measure diverges from its computed status.",
    )

    @field_validator("kinds")
    @classmethod
    def _unique_kinds(cls, kinds: list[NotificationKind]) -> list[NotificationKind]:
        return list(dict.fromkeys(kinds))


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
    return f"{subscription_id}:{change.kpi_id}:{change.episode_id or '-'}:{kind.value}"


def reminder_key(original_key: str, number: int) -> str:
    """The key of the `number`-th reminder of a notification (1-based)."""
    return f"{original_key}#r{number}"


def select(
    subscriptions: Sequence[tuple[str, SubscriptionFilter]], change: KpiStatusChanged
) -> list[tuple[str, NotificationKind]]:
    """The (subscription, kind) pairs a status change notifies."""
    kind = classify(change)
    if kind is None:
        return []
    return [(sub_id, kind) for sub_id, flt in subscriptions if matches(flt, change, kind)]


def select_divergence(
    subscriptions: Sequence[tuple[str, SubscriptionFilter]], change: MeasureDivergenceChanged
) -> list[tuple[str, NotificationKind]]:
    """The subscriptions the opening of a divergence episode notifies: those asking for the
    kind, for the measure's ministries and measure (a filter naming KPIs is about KPIs), whose
    least severity the computed status reaches. A level change or a close notifies nobody."""
    if not change.opens:
        return []
    kind = NotificationKind.DIVERGENCE
    return [
        (sub_id, kind)
        for sub_id, flt in subscriptions
        if kind in flt.kinds
        and not flt.kpis
        and (not flt.ministries or set(flt.ministries) & set(change.ministries))
        and (not flt.measures or change.measure_id in flt.measures)
        and status_severity(change.computed_status) >= status_severity(flt.min_severity)
    ]


def divergence_key(subscription_id: str, change: MeasureDivergenceChanged) -> str:
    """One notification per subscription and divergence episode."""
    kind = NotificationKind.DIVERGENCE.value
    return f"{subscription_id}:{change.measure_id}:{change.episode_id}:{kind}"


def closes_episode(change: KpiStatusChanged) -> bool:
    """A change out of the bad statuses ends the episode it carries: no more reminders."""
    return change.status not in BAD_STATUSES and change.episode_id is not None


def still_relevant(
    kind: NotificationKind, episode_id: str | None, current: KpiStatusChanged | None
) -> bool:
    """Whether a held-back notification is still worth sending, given the KPI's latest change.

    - a slip: the episode it reported is still open (the KPI is still in a bad status);
    - an overdue or stale notification: the same, and the status is still overdue or stale;
    - a recovery: the KPI is still good and no new episode has opened since;
    - a divergence: always (it reports a ministry's statement, not a status).
    """
    if kind is NotificationKind.DIVERGENCE:
        return True
    if current is None:
        return False
    if kind is NotificationKind.RECOVERED:
        return current.status not in BAD_STATUSES and current.episode_id in (episode_id, None)
    if current.status not in BAD_STATUSES or current.episode_id != episode_id:
        return False
    if kind is NotificationKind.OVERDUE:
        return current.status is Status.OVERDUE
    if kind is NotificationKind.STALE:
        return current.status is Status.STALE
    return True

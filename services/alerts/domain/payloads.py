"""The webhook body: Standard Webhooks' ``{type, timestamp, data}``. Pure.

Every delivery has the same shape, whether it carries one change or a group of them:

- ``type`` is the type of the **headline** change, the most severe one in the delivery
  (``kpi.slipped``, ``kpi.recovered``, ``kpi.overdue``, ``kpi.stale``, ``measure.divergence``);
- ``timestamp`` is when the headline status change happened (ISO 8601);
- ``data`` holds the headline change's fields at its top level (so a receiver that reads one
  change per webhook needs nothing else) and ``data.changes``, every change in the delivery
  (the headline first, then oldest first), each with its own ``type``. ``data.count`` is their
  number.

So one ``type`` always comes with one schema, as the specification recommends.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict

from services.alerts.domain.notifications import WEBHOOK_TYPES, NotificationKind
from shared.events.contracts import (
    KpiStatusChanged,
    MeasureDivergenceChanged,
    Status,
    status_severity,
)

# What a notification reports: a KPI's or milestone's status change, or a measure's divergence.
Change = KpiStatusChanged | MeasureDivergenceChanged


def subject_of(change: Change) -> str:
    """The catalogue id a change is about (a KPI, a milestone, or a measure)."""
    return change.kpi_id if isinstance(change, KpiStatusChanged) else change.measure_id


def status_of(change: Change) -> Status:
    """The computed status a change reports."""
    return change.status if isinstance(change, KpiStatusChanged) else change.computed_status


class NotifiedChange(BaseModel):
    """One notification as it appears in a webhook."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    notification_id: str
    kind: NotificationKind
    reminder: int = 0
    change: Change
    changed_at: AwareDatetime
    status_event_id: str


def _severity(item: NotifiedChange) -> tuple[int, int, datetime, str]:
    return (
        0 if item.kind is NotificationKind.RECOVERED else 1,
        status_severity(status_of(item.change)),
        item.changed_at,
        item.notification_id,
    )


def headline(items: Sequence[NotifiedChange]) -> NotifiedChange:
    """The most severe change: a bad status over a recovery, then the worse status, then the
    most recent."""
    if not items:
        raise ValueError("a delivery needs at least one change")
    return max(items, key=_severity)


def change_fields(item: NotifiedChange, api_url: str) -> dict[str, Any]:
    change = item.change
    if isinstance(change, MeasureDivergenceChanged):
        return divergence_fields(item, change, api_url)
    return {
        "type": WEBHOOK_TYPES[item.kind],
        "notification_id": item.notification_id,
        "reminder": item.reminder,
        "kpi_id": change.kpi_id,
        "kind": change.kind,
        "measure_id": change.measure_id,
        "ministries": list(change.ministries),
        "previous_status": change.previous_status.value if change.previous_status else None,
        "status": change.status.value,
        "episode_id": change.episode_id,
        "evaluated_on": change.evaluated_on.isoformat(),
        "changed_at": item.changed_at.isoformat(),
        "explanation": change.explanation,
        "status_event_id": item.status_event_id,
        "link": f"{api_url.rstrip('/')}/v1/kpis/{change.kpi_id}",
    }


def divergence_fields(
    item: NotifiedChange, change: MeasureDivergenceChanged, api_url: str
) -> dict[str, Any]:
    """A divergence in the same shape as a status change: the measure instead of a KPI
    (`kpi_id` null, `kind` measure), the computed status as `status`, and the self-assessment
    in `explanation`."""
    rating = change.self_assessment.value if change.self_assessment else None
    as_of = change.assessed_as_of.isoformat() if change.assessed_as_of else None
    return {
        "type": WEBHOOK_TYPES[item.kind],
        "notification_id": item.notification_id,
        "reminder": item.reminder,
        "kpi_id": None,
        "kind": "measure",
        "measure_id": change.measure_id,
        "ministries": list(change.ministries),
        "previous_status": None,
        "status": change.computed_status.value,
        "episode_id": change.episode_id,
        "evaluated_on": change.evaluated_on.isoformat(),
        "changed_at": item.changed_at.isoformat(),
        "explanation": {
            "rule_id": f"divergence.{change.divergence.value}",
            "message": f"the ministry rates the measure {rating} (as of {as_of}); its KPIs and "
            f"milestones put it at {change.computed_status.value}",
            "self_assessment": rating,
            "assessed_as_of": as_of,
            "divergence": change.divergence.value,
            "previous_divergence": (
                change.previous_divergence.value if change.previous_divergence else None
            ),
        },
        "status_event_id": item.status_event_id,
        "link": f"{api_url.rstrip('/')}/v1/measures/{change.measure_id}/status",
    }


def webhook_payload(
    items: Sequence[NotifiedChange], *, api_url: str, subscription_id: str
) -> dict[str, Any]:
    top = headline(items)
    rest = sorted(
        (i for i in items if i.notification_id != top.notification_id),
        key=lambda i: (i.changed_at, i.notification_id),
    )
    changes = [change_fields(i, api_url) for i in (top, *rest)]
    data = {**changes[0], "subscription_id": subscription_id, "count": len(changes)}
    data["changes"] = changes
    return {"type": changes[0]["type"], "timestamp": top.changed_at.isoformat(), "data": data}


def encode(payload: dict[str, Any]) -> bytes:
    """Minified JSON: the exact bytes that are signed and sent (and stored for retries)."""
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()

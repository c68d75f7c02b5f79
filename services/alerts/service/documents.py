"""Status changes and notifications as the notification and KPI-state stores keep them, and
back. These two stores still speak documents (see ports.py): this module is where the use
cases build and read them, so that the field names stay in one place."""

from __future__ import annotations

import json
from datetime import datetime

from services.alerts.domain.notifications import NotificationKind
from services.alerts.domain.payloads import Change, NotifiedChange, subject_of
from services.alerts.domain.silences import Target
from services.alerts.ports import Document
from shared.events.contracts import KpiStatusChanged, MeasureDivergenceChanged


def change_document(change: Change) -> Document:
    """A status change as stored (the explanation as JSON text: its keys are free-form)."""
    if isinstance(change, MeasureDivergenceChanged):
        return change.model_dump(mode="json")
    data = change.model_dump(mode="json", exclude={"explanation"})
    data["explanation_json"] = json.dumps(change.explanation, ensure_ascii=False)
    return data


def notified_change_from_document(doc: Document) -> Change:
    """A notification's change: a divergence (it has a `divergence`) or a status change."""
    if "divergence" in doc:
        return MeasureDivergenceChanged.model_validate(doc)
    return change_from_document(doc)


def change_from_document(doc: Document) -> KpiStatusChanged:
    data = {k: v for k, v in doc.items() if k != "explanation_json"}
    data["explanation"] = json.loads(doc.get("explanation_json") or "{}")
    return KpiStatusChanged.model_validate(data)


def target_of(doc: Document) -> Target:
    return Target(
        subscription_id=doc["subscription_id"],
        kpi_id=doc["kpi_id"],
        measure_id=doc["measure_id"],
        ministries=list(doc.get("ministries") or []),
    )


def notified_change(doc: Document) -> NotifiedChange:
    return NotifiedChange(
        notification_id=doc["_id"],
        kind=NotificationKind(doc["kind"]),
        reminder=int(doc.get("reminder", 0)),
        change=notified_change_from_document(doc["change"]),
        changed_at=doc["changed_at"],
        status_event_id=doc["status_event_id"],
    )


def new_notification(
    *,
    key: str,
    subscription_id: str,
    kind: NotificationKind,
    change: Change,
    changed_at: datetime,
    status_event_id: str,
    now: datetime,
    reminder: int,
) -> Document:
    # `kpi_id`: the subject (a measure, for a divergence), as silences and the log match it.
    return {
        "_id": key,
        "subscription_id": subscription_id,
        "kpi_id": subject_of(change),
        "measure_id": change.measure_id,
        "ministries": list(change.ministries),
        "episode_id": change.episode_id,
        "kind": kind.value,
        "reminder": reminder,
        "change": change_document(change),
        "changed_at": changed_at,
        "status_event_id": status_event_id,
        "state": "waiting",
        "arrived_at": now,
        "immediate": False,
        "created_at": now,
        "updated_at": now,
    }

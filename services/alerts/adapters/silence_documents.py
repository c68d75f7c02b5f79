"""A silence as stored (``alerts_silences``) and back: shared by the MongoDB and the in-memory
adapters."""

from __future__ import annotations

from datetime import datetime, timedelta

from services.alerts.domain.silences import Silence
from services.alerts.ports import Document, SilenceRecord


def silence_document(record: SilenceRecord) -> Document:
    silence = record.silence
    quiet = silence.quiet_hours
    return {
        "_id": silence.id,
        "scope": silence.scope.model_dump(mode="json"),
        "starts_at": silence.starts_at,
        "ends_at": silence.ends_at,
        "quiet_hours": None if quiet is None else quiet.model_dump(mode="json"),
        "reason": record.reason,
        "created_at": record.created_at,
        "ended_early_at": record.ended_early_at,
    }


def silence_from_document(doc: Document) -> SilenceRecord:
    silence = Silence.model_validate(
        {
            "id": doc["_id"],
            "scope": doc.get("scope") or {},
            "starts_at": doc.get("starts_at"),
            "ends_at": doc.get("ends_at"),
            "quiet_hours": doc.get("quiet_hours"),
        }
    )
    return SilenceRecord(
        silence=silence,
        reason=doc.get("reason"),
        created_at=doc["created_at"],
        ended_early_at=doc.get("ended_early_at"),
    )


def ending(silence: Silence, now: datetime) -> Document | None:
    """The fields that end a silence now (kept as history), or None when it is already over;
    a silence not yet started is moved to have started just before."""
    if silence.ends_at is not None and silence.ends_at <= now:
        return None
    fields: Document = {"ends_at": now, "ended_early_at": now}
    if silence.starts_at is not None and silence.starts_at >= now:
        fields["starts_at"] = now - timedelta(milliseconds=1)
    return fields

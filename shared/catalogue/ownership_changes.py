"""The records of run-time ownership changes, free of any storage (shared/catalogue/overrides.py
keeps them in MongoDB): what the ingest and kpi service layers exchange with their stores."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any


class UnknownItemError(LookupError):
    """No KPI or milestone with that id in the loaded catalogue."""


def iso_time(moment: datetime) -> str:
    """One spelling of a time whether it comes from the clock or back from MongoDB (naive UTC,
    millisecond precision), so an item's content hash does not depend on where it was read."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="milliseconds")


@dataclass(frozen=True)
class OwnershipChange:
    item_id: str
    action: str  # "set" | "reset"
    owners: list[str]
    previous: list[str]
    catalogue_owners: list[str]
    reason: str
    changed_by: str
    changed_at: datetime
    # The change document's id (a string): what the published event's id is derived from.
    change_id: str = ""

    def as_json(self) -> dict[str, Any]:
        return {
            "change_id": self.change_id,
            "item_id": self.item_id,
            "action": self.action,
            "owners": self.owners,
            "previous": self.previous,
            "catalogue_owners": self.catalogue_owners,
            "reason": self.reason,
            "changed_by": self.changed_by,
            "changed_at": iso_time(self.changed_at),
        }

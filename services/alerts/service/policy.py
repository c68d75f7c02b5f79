"""How notifications become deliveries (from the settings)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta


@dataclass(frozen=True)
class Policy:
    """How notifications become deliveries (from the settings)."""

    api_url: str
    grouping_window: timedelta
    max_changes_per_delivery: int = 50
    reminder_interval: timedelta = timedelta(days=7)
    claim_recovery: timedelta = timedelta(seconds=30)


def no_wakeup() -> None:
    """The default wake-up of a loop nobody runs (tests and tools drive the use cases)."""
    return

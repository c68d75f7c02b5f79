"""Builders for alerts unit tests."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from shared.events.contracts import KpiStatusChanged, Status

T0 = datetime(2026, 4, 1, 3, 0, tzinfo=UTC)  # 12:00 in Japan


def change(
    *,
    previous: Status | None = Status.ON_TRACK,
    status: Status = Status.OFF_TRACK,
    kpi_id: str = "kpi.test",
    measure_id: str = "m.test",
    ministries: list[str] | None = None,
    episode_id: str | None = "kpi.test:2026-04-01",
    **extra: Any,
) -> KpiStatusChanged:
    return KpiStatusChanged(
        kpi_id=kpi_id,
        kind="kpi",
        measure_id=measure_id,
        ministries=ministries if ministries is not None else ["mic"],
        previous_status=previous,
        status=status,
        episode_id=episode_id,
        evaluated_on=date(2026, 4, 1),
        explanation={"rule_id": "kpi.trajectory", "message": "behind", "inputs": {}, **extra},
    )

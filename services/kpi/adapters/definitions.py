"""Catalogue documents (as loaded into MongoDB) → the engine's definitions."""

from __future__ import annotations

from datetime import date
from typing import Any

from services.kpi.domain.model import (
    Baseline,
    Direction,
    KpiDefinition,
    MilestoneDefinition,
    MilestoneKind,
    RelativeTarget,
    Target,
)

Definition = KpiDefinition | MilestoneDefinition


def _date(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value)[:10])


def _target(raw: dict[str, Any]) -> Target | None:
    deadline = raw.get("deadline")
    if deadline is None:
        return None
    relative = raw.get("relative")
    if relative:
        return Target(
            relative=RelativeTarget(
                base_value=relative.get("base_value"),
                base_fiscal_year=relative.get("base_fiscal_year"),
                change_ratio=relative["change_ratio"],
            ),
            deadline=_date(deadline),
            tolerance=float(raw.get("tolerance") or 0.0),
        )
    if raw.get("value") is None:
        return None
    comparator = raw.get("comparator")
    return Target(
        value=float(raw["value"]),
        deadline=_date(deadline),
        comparator=comparator if comparator in {"at_least", "at_most", "about"} else None,
        tolerance=float(raw.get("tolerance") or 0.0),
    )


def definition_from_catalogue(doc: dict[str, Any]) -> Definition:
    item_id = str(doc.get("id") or doc["_id"])
    ministries = tuple(doc.get("ministries") or ())
    if doc.get("kind") == "milestone":
        deadline = doc.get("deadline") or (doc.get("targets") or [{}])[0].get("deadline")
        return MilestoneDefinition(
            id=item_id,
            measure_id=doc["measure_id"],
            ministries=ministries,
            kind=MilestoneKind.START
            if doc.get("milestone_kind") == "start"
            else MilestoneKind.DELIVER,
            deadline=_date(deadline),
        )
    baseline_raw = doc.get("baseline")
    baseline = None
    if (
        isinstance(baseline_raw, dict)
        and baseline_raw.get("value") is not None
        and (baseline_raw.get("as_of"))
    ):
        baseline = Baseline(value=float(baseline_raw["value"]), as_of=_date(baseline_raw["as_of"]))
    targets = [t for t in (_target(raw) for raw in doc.get("targets") or []) if t is not None]
    targets.sort(key=lambda t: t.deadline)
    if baseline is not None:
        targets = [t for t in targets if t.deadline > baseline.as_of]
    return KpiDefinition(
        id=item_id,
        measure_id=doc["measure_id"],
        ministries=ministries,
        direction=Direction(doc.get("direction") or "increase"),
        baseline=baseline,
        targets=tuple(targets),
    )

"""Catalogue documents (as loaded into MongoDB) → the engine's definitions.

The catalogue says more than the engine models; this is where the two meet. Every entry maps to
*some* definition (a bad field drops that field, never the entry), so one odd document cannot
stop the sweep.

KPIs
- direction, accumulation (level / cumulative / per_period) and the baseline (only with a
  date: without one the trajectory starts at the first observation) are taken as they are.
- Comparators. Every catalogue KPI has a direction, and the engine's `about` is two-sided
  (|value - target| <= tolerance): beating "約５割" or overshooting 28万局 would then count as
  *missing* the target. So each target is compared in the KPI's direction (at_least for an
  increase, at_most for a decrease) and the catalogue comparator sets the tolerance:
    exactly   a plain figure: the entry's tolerance, else none;
    about     約/程度/ほぼ: the entry's tolerance, else defaults.approximate_tolerance × |target|
              (for a relative target, × the baseline-resolved target when the baseline lies in
              the base year, else none);
    at_least / at_most  as stated; on a *relative* target the word qualifies the change
              ("少なくとも３割の削減" = a cut of at least 30% = at most 70% of the base), which is
              again the direction's comparator.
- Relative targets {base_fiscal_year, change_ratio} map to the engine's RelativeTarget; the
  engine resolves the base from the baseline (when dated in that fiscal year) or from the
  observation reported for that year. change_ratio -1 ("to zero") becomes the value 0.
- Scope. National targets drive the status. The plan also states per-region floors (各都道府県
  90%程度以上); the catalogue keeps those in their own KPI, whose observations are the lowest
  region's value, so a KPI with no national target is evaluated against its per-region ones.
  A KPI mixing both is evaluated against the national ones only.
- Targets due on or before the baseline date, and a second target on the same deadline, are
  dropped (the engine needs strictly increasing deadlines after the baseline). A KPI left with
  no usable target maps to targets=() and shows as target_pending.
- Thresholds come from the catalogue `defaults` stored with each document: at-risk tolerance,
  reporting cadence and stale grace (the off-track tolerance stays the engine's, raised to the
  at-risk one if that is larger).

Milestones: kind deliver/start and the deadline (the one target's deadline). depends_on is not
modelled by the engine (a dependency's status shows on its own). A milestone without a
deadline maps to date.max: it can be reported on but never falls overdue.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any, TypeVar

from pydantic import ValidationError

from services.kpi.domain.fiscal import fiscal_year_of
from services.kpi.domain.model import (
    DEFAULT_KPI_THRESHOLDS,
    Accumulation,
    Baseline,
    Comparator,
    Direction,
    KpiDefinition,
    KpiThresholds,
    MilestoneDefinition,
    MilestoneKind,
    MilestoneThresholds,
    RelativeTarget,
    Target,
)
from shared.catalogue.model import Defaults

Definition = KpiDefinition | MilestoneDefinition

_E = TypeVar("_E", Direction, Accumulation)

NATIONAL = "national"
PER_REGION = "per_region"


def _date(value: Any) -> date | None:
    if isinstance(value, date):
        return value
    if value is None:
        return None
    try:
        return date.fromisoformat(str(value)[:10])
    except ValueError:
        return None


def _float(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def catalogue_defaults(doc: Mapping[str, Any]) -> Defaults:
    """The catalogue defaults stored with the document, else the schema's defaults."""
    raw = doc.get("defaults")
    if isinstance(raw, Mapping):
        try:
            return Defaults.model_validate(dict(raw))
        except ValidationError:
            pass
    return Defaults()


def kpi_thresholds(defaults: Defaults) -> KpiThresholds:
    at_risk = defaults.at_risk_tolerance
    return KpiThresholds(
        at_risk_tolerance=at_risk,
        off_track_tolerance=max(DEFAULT_KPI_THRESHOLDS.off_track_tolerance, at_risk),
        reporting_cadence_days=defaults.reporting_cadence_days,
        stale_grace_days=defaults.stale_grace_days,
    )


def milestone_thresholds(defaults: Defaults) -> MilestoneThresholds:
    return MilestoneThresholds(
        reporting_cadence_days=defaults.reporting_cadence_days,
        stale_grace_days=defaults.stale_grace_days,
    )


def _direction_comparator(direction: Direction) -> Comparator:
    return Comparator.AT_LEAST if direction is Direction.INCREASE else Comparator.AT_MOST


def _baseline(raw: Any) -> Baseline | None:
    if not isinstance(raw, Mapping):
        return None
    value, as_of = _float(raw.get("value")), _date(raw.get("as_of"))
    if value is None or as_of is None:
        return None
    return Baseline(value=value, as_of=as_of)


def _target(
    raw: Mapping[str, Any],
    direction: Direction,
    baseline: Baseline | None,
    defaults: Defaults,
) -> Target | None:
    deadline = _date(raw.get("deadline"))
    if deadline is None:
        return None
    comparator = _direction_comparator(direction)
    stated = raw.get("comparator")
    explicit = _float(raw.get("tolerance"))
    relative = raw.get("relative")
    try:
        if isinstance(relative, Mapping):
            ratio = _float(relative.get("change_ratio"))
            if ratio is None:
                return None
            base_year = relative.get("base_fiscal_year")
            base_value = _float(relative.get("base_value"))
            if ratio <= -1.0:  # "to zero": no base needed
                return Target(value=0.0, deadline=deadline, comparator=comparator)
            tolerance = explicit
            if tolerance is None and stated == "about":
                tolerance = 0.0
                base = base_value
                if (
                    base is None
                    and baseline is not None
                    and isinstance(base_year, int)
                    and fiscal_year_of(baseline.as_of) == base_year
                ):
                    base = baseline.value
                if base is not None:
                    tolerance = defaults.approximate_tolerance * abs(base * (1.0 + ratio))
            return Target(
                relative=RelativeTarget(
                    base_value=base_value,
                    base_fiscal_year=base_year if base_value is None else None,
                    change_ratio=ratio,
                ),
                deadline=deadline,
                comparator=comparator,
                tolerance=tolerance or 0.0,
            )
        value = _float(raw.get("value"))
        if value is None:
            return None
        tolerance = explicit
        if tolerance is None and stated == "about":
            tolerance = defaults.approximate_tolerance * abs(value)
        return Target(
            value=value, deadline=deadline, comparator=comparator, tolerance=tolerance or 0.0
        )
    except ValidationError:
        return None


def _targets(
    raws: Any, direction: Direction, baseline: Baseline | None, defaults: Defaults
) -> tuple[Target, ...]:
    if not isinstance(raws, list):
        return ()
    entries = [r for r in raws if isinstance(r, Mapping)]
    national = [r for r in entries if (r.get("scope") or NATIONAL) == NATIONAL]
    chosen = national or [r for r in entries if r.get("scope") == PER_REGION]
    targets = [t for t in (_target(r, direction, baseline, defaults) for r in chosen) if t]
    targets.sort(key=lambda t: t.deadline)  # stable: the first stated wins a tied deadline
    kept: list[Target] = []
    for target in targets:
        if baseline is not None and target.deadline <= baseline.as_of:
            continue
        if kept and kept[-1].deadline == target.deadline:
            continue
        kept.append(target)
    return tuple(kept)


def _enum_or(kind: type[_E], raw: Any, default: _E) -> _E:
    try:
        return kind(raw)
    except ValueError:
        return default


def definition_from_catalogue(doc: Mapping[str, Any]) -> Definition:
    """The engine's definition of a `catalogue_items` document (see the module docstring)."""
    item_id = str(doc.get("id") or doc["_id"])
    measure_id = str(doc.get("measure_id") or "")
    ministries = tuple(str(m) for m in doc.get("ministries") or ())
    defaults = catalogue_defaults(doc)
    if doc.get("kind") == "milestone":
        first = (doc.get("targets") or [{}])[0]
        deadline = _date(doc.get("deadline")) or _date(
            first.get("deadline") if isinstance(first, Mapping) else None
        )
        return MilestoneDefinition(
            id=item_id,
            measure_id=measure_id,
            ministries=ministries,
            kind=MilestoneKind.START
            if doc.get("milestone_kind") == "start"
            else MilestoneKind.DELIVER,
            deadline=deadline or date.max,
            thresholds=milestone_thresholds(defaults),
        )
    direction = _enum_or(Direction, doc.get("direction"), Direction.INCREASE)
    baseline = _baseline(doc.get("baseline"))
    fields: dict[str, Any] = {
        "id": item_id,
        "measure_id": measure_id,
        "ministries": ministries,
        "direction": direction,
        "accumulation": _enum_or(Accumulation, doc.get("accumulation"), Accumulation.LEVEL),
        "baseline": baseline,
        "thresholds": kpi_thresholds(defaults),
    }
    targets = _targets(doc.get("targets"), direction, baseline, defaults)
    try:
        return KpiDefinition(**fields, targets=targets)
    except ValidationError:
        # Whatever the engine rejects in the targets, the KPI still exists: target_pending.
        return KpiDefinition(**fields, targets=())

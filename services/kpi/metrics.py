"""The kpi service's own metrics. Consumer and HTTP metrics come from ``shared.metrics``; the
processing lag (an event's acceptance to its KPI's status stored and published) is
``shinchoku_consumer_event_age_seconds{service="kpi"}``.

Labels are small bounded sets: status, kind (kpi / milestone) and the responsible ministry
(about twenty codes); never KPI or measure ids.
"""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge

from shared.metrics import metric_name


@dataclass(frozen=True)
class KpiMetrics:
    transitions: Counter
    slips: Counter
    recoveries: Counter
    subjects_by_status: Gauge

    @classmethod
    def create(cls, registry: CollectorRegistry) -> KpiMetrics:
        return cls(
            transitions=Counter(
                metric_name("kpi", "status_transitions"),
                "Status changes published, by previous and new status.",
                ["from_status", "to_status"],
                registry=registry,
            ),
            slips=Counter(
                metric_name("kpi", "slips"),
                "Status changes to a worse, bad status (at_risk, off_track, overdue, stale), by "
                "responsible ministry, kind and new status.",
                ["ministry", "kind", "status"],
                registry=registry,
            ),
            recoveries=Counter(
                metric_name("kpi", "recoveries"),
                "Status changes out of a bad status to a better one, by responsible ministry, "
                "kind and new status.",
                ["ministry", "kind", "status"],
                registry=registry,
            ),
            subjects_by_status=Gauge(
                metric_name("kpi", "subjects"),
                "KPIs and milestones by current status, kind and responsible ministry (a subject "
                "owned by two ministries counts for each); refreshed by the sweep.",
                ["status", "kind", "ministry"],
                registry=registry,
            ),
        )

#!/usr/bin/env python3
"""Shinchoku's Grafana dashboards as code: ``python3 deploy/grafana/generate.py`` writes
``deploy/grafana/dashboards/*.json``, which are checked in and provisioned by docker compose.

Edit this file, run it, commit both. tests/unit/test_dashboards.py checks that the committed JSON
is this file's output, that every panel uses the provisioned datasource (uid ``prometheus``) and
that every metric a query names exists in the services' registries (or is a recording rule);
tests/e2e/test_dashboards.py runs every query against the local Prometheus after traffic has
flowed through the three services and fails on an error or an empty answer.

Standard library only. Every query filters on the ``deployment`` label (a dashboard variable;
see deploy/prometheus/prometheus.yml) and uses Grafana's ``$__rate_interval`` / ``$__range``.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
DASHBOARDS = HERE / "dashboards"
DATASOURCE = {"type": "prometheus", "uid": "prometheus"}
GRID_WIDTH = 24

D = 'deployment=~"$deployment"'
M = 'ministry=~"$ministry"'
RATE = "[$__rate_interval]"
RANGE = "[$__range]"


@dataclass(frozen=True)
class Query:
    expr: str
    legend: str = ""
    instant: bool = False
    table: bool = False
    # Why an empty answer is normal for this query (None: after traffic it must return data).
    may_be_empty: str | None = None


@dataclass(frozen=True)
class Panel:
    title: str
    kind: str  # timeseries, stat, table, bargauge, row
    queries: Sequence[Query] = ()
    description: str = ""
    unit: str = "short"
    width: int = 12
    height: int = 8
    stack: bool = False
    bars: bool = False
    no_value: str | None = None
    transformations: Sequence[dict[str, Any]] = ()
    options: dict[str, Any] = field(default_factory=dict)
    mappings: Sequence[dict[str, Any]] = ()
    thresholds: Sequence[tuple[float | None, str]] = ((None, "green"),)


@dataclass(frozen=True)
class Variable:
    name: str
    label: str
    query: str  # label_values(<selector>, <label>)
    multi: bool = False

    @property
    def selector(self) -> str:
        """The series selector inside label_values(...), for tests to run."""
        inner = self.query.removeprefix("label_values(").removesuffix(")")
        return inner.rsplit(",", 1)[0].strip()


@dataclass(frozen=True)
class Dashboard:
    uid: str
    title: str
    description: str
    variables: Sequence[Variable]
    panels: Sequence[Panel]

    @property
    def filename(self) -> str:
        return f"{self.uid.removeprefix('shinchoku-')}.json"


DEPLOYMENT = Variable(
    "deployment",
    "Deployment",
    'label_values(up{job=~"shinchoku-.*"}, deployment)',
)
MINISTRY = Variable(
    "ministry",
    "Ministry",
    'label_values(shinchoku_kpi_subjects{deployment=~"$deployment"}, ministry)',
    multi=True,
)


def row(title: str) -> Panel:
    return Panel(title, "row", width=GRID_WIDTH, height=1)


def subjects(statuses: str) -> str:
    return f'sum(shinchoku_kpi_subjects{{{D}, {M}, status=~"{statuses}"}})'


def counted(metric: str, window: str, by: str = "") -> str:
    """Increments of a rarely moving counter over `window`, first ones included: a labelled
    counter appears at its first increment, at 1, and ``increase()`` alone reads that as 0.
    A series absent `window` ago counts with its whole value (``* 1`` drops the metric name,
    so ``or`` matches it with ``increase()``'s nameless series)."""
    selector = f"{metric}{{{D}, {M}}}"
    inner = f"({selector} unless {selector} offset {window}) * 1 or increase({selector}[{window}])"
    return f"sum by ({by}) ({inner})" if by else f"sum({inner})"


def quantile(q: float, metric: str, by: str = "", matchers: str = D) -> str:
    labels = f"{by}, le" if by else "le"
    return f"histogram_quantile({q}, sum by ({labels}) (rate({metric}_bucket{{{matchers}}}{RATE})))"


# -------------------------------------------------------------------------------------------
# Plan progress: where the plan stands, by ministry

COUNTED_TWICE = (
    "A KPI or milestone owned by several ministries counts once for each of them "
    "(shinchoku_kpi_subjects)."
)

PLAN_PROGRESS = Dashboard(
    uid="shinchoku-plan-progress",
    title="Shinchoku / Plan progress",
    description="Statuses of the plan's KPIs and milestones by ministry, slips and recoveries, "
    "stale reporting, and what is off track now.",
    variables=(DEPLOYMENT, MINISTRY),
    panels=(
        Panel(
            "On course",
            "stat",
            (Query(subjects("on_track|achieved"), instant=True),),
            description="KPIs and milestones on track or achieved. " + COUNTED_TWICE,
            width=4,
            height=4,
            no_value="0",
        ),
        Panel(
            "At risk",
            "stat",
            (Query(subjects("at_risk"), instant=True),),
            description="Behind plan by more than the at-risk tolerance, forecast to miss, "
            "or expected late. " + COUNTED_TWICE,
            width=4,
            height=4,
            no_value="0",
            thresholds=((None, "green"), (1, "orange")),
        ),
        Panel(
            "Off track or overdue",
            "stat",
            (Query(subjects("off_track|overdue"), instant=True),),
            description="Far behind plan, blocked, or past the deadline. " + COUNTED_TWICE,
            width=4,
            height=4,
            no_value="0",
            thresholds=((None, "green"), (1, "red")),
        ),
        Panel(
            "Stale",
            "stat",
            (Query(subjects("stale"), instant=True),),
            description="The latest report is older than the reporting cadence plus grace: "
            "nobody knows where these stand. " + COUNTED_TWICE,
            width=4,
            height=4,
            no_value="0",
            thresholds=((None, "green"), (1, "purple")),
        ),
        Panel(
            "Slips in range",
            "stat",
            (Query(counted("shinchoku_kpi_slips_total", "$__range"), instant=True),),
            description="Status changes to a worse bad status (at risk, off track, overdue, "
            "stale) in the selected time range.",
            width=4,
            height=4,
            no_value="0",
            thresholds=((None, "green"), (1, "orange")),
        ),
        Panel(
            "Recoveries in range",
            "stat",
            (Query(counted("shinchoku_kpi_recoveries_total", "$__range"), instant=True),),
            description="Status changes out of a bad status to a better one in the range.",
            width=4,
            height=4,
            no_value="0",
        ),
        Panel(
            "Status by ministry",
            "table",
            (
                Query(
                    f"sum by (ministry, status) (shinchoku_kpi_subjects{{{D}, {M}}})",
                    instant=True,
                    table=True,
                ),
            ),
            description="KPIs and milestones per ministry (rows) and current status (columns), "
            "refreshed by the kpi service's sweep. " + COUNTED_TWICE,
            width=24,
            height=10,
            transformations=(
                {
                    "id": "groupingToMatrix",
                    "options": {
                        "columnField": "status",
                        "rowField": "ministry",
                        "valueField": "Value",
                        "emptyValue": "zero",
                    },
                },
            ),
        ),
        Panel(
            "Slips by ministry",
            "timeseries",
            (
                Query(
                    counted("shinchoku_kpi_slips_total", "$__rate_interval", "ministry"),
                    "{{ministry}}",
                ),
            ),
            description="Status changes to a worse bad status, per responsible ministry.",
            bars=True,
            stack=True,
        ),
        Panel(
            "Recoveries by ministry",
            "timeseries",
            (
                Query(
                    counted("shinchoku_kpi_recoveries_total", "$__rate_interval", "ministry"),
                    "{{ministry}}",
                ),
            ),
            description="Status changes out of a bad status, per responsible ministry.",
            bars=True,
            stack=True,
        ),
        Panel(
            "Stale reporting by ministry",
            "bargauge",
            (
                Query(
                    f'sum by (ministry) (shinchoku_kpi_subjects{{{D}, {M}, status="stale"}})',
                    "{{ministry}}",
                    instant=True,
                ),
            ),
            description="KPIs and milestones whose latest report is older than the cadence "
            "plus grace, per ministry.",
            options={"orientation": "horizontal", "displayMode": "basic"},
            thresholds=((None, "purple"),),
        ),
        Panel(
            "Statuses over time",
            "timeseries",
            (
                Query(
                    f"sum by (status) (shinchoku_kpi_subjects{{{D}, {M}}})",
                    "{{status}}",
                ),
            ),
            description="KPIs and milestones by status. " + COUNTED_TWICE,
            stack=True,
        ),
        Panel(
            "Off track now, by ministry and kind",
            "table",
            (
                Query(
                    "sort_desc(sum by (ministry, kind, status) (shinchoku_kpi_subjects"
                    f'{{{D}, {M}, status=~"at_risk|off_track|overdue|stale"}}) > 0)',
                    instant=True,
                    table=True,
                ),
            ),
            description="A bounded table: ministries x kind x bad status, largest first "
            "(metrics carry no KPI or measure ids; the kpi API lists the subjects: "
            "GET /v1/kpis?status=off_track).",
            width=24,
            height=8,
            transformations=(
                {
                    "id": "organize",
                    "options": {
                        "excludeByName": {"Time": True},
                        "renameByName": {"Value": "subjects"},
                    },
                },
            ),
        ),
    ),
)

# -------------------------------------------------------------------------------------------
# Pipeline health: ingest -> kafka -> kpi -> kafka -> alerts -> webhooks

PIPELINE_HEALTH = Dashboard(
    uid="shinchoku-pipeline-health",
    title="Shinchoku / Pipeline health",
    description="Ingest rate and rejections, consumer lag, processing latency, dead letters, "
    "webhook delivery latency and failures.",
    variables=(DEPLOYMENT,),
    panels=(
        Panel(
            "Services up",
            "stat",
            (Query(f'up{{job=~"shinchoku-.*", {D}}}', "{{service}}", instant=True),),
            description="Whether Prometheus can scrape each service's /metrics.",
            width=6,
            height=4,
            mappings=(
                {
                    "type": "value",
                    "options": {
                        "0": {"text": "DOWN", "color": "red"},
                        "1": {"text": "UP", "color": "green"},
                    },
                },
            ),
            thresholds=((None, "red"), (1, "green")),
        ),
        Panel(
            "Events accepted /s",
            "stat",
            (
                Query(
                    f'sum(rate(shinchoku_ingest_events_total{{{D}, outcome="accepted"}}{RATE}))',
                    instant=True,
                ),
            ),
            description="Events ingest published to Kafka (acks=all).",
            unit="ops",
            width=6,
            height=4,
        ),
        Panel(
            "Consumer lag",
            "stat",
            (
                Query(
                    f"service:shinchoku_consumer_lag_records:sum{{{D}}}",
                    "{{service}}",
                    instant=True,
                ),
            ),
            description="Records on each consumer's topic not yet consumed.",
            width=6,
            height=4,
            thresholds=((None, "green"), (100, "orange"), (1000, "red")),
        ),
        Panel(
            "Dead letters in range",
            "stat",
            (
                Query(
                    "sum by (service) "
                    f"(increase(shinchoku_consumer_dead_letters_total{{{D}}}{RANGE}))",
                    "{{service}}",
                    instant=True,
                ),
            ),
            description="Records sent to the dead-letter topic in the selected range.",
            width=6,
            height=4,
            no_value="0",
            thresholds=((None, "green"), (1, "orange")),
        ),
        row("Ingest"),
        Panel(
            "Ingest rate by outcome",
            "timeseries",
            (
                Query(
                    f"sum by (outcome) (rate(shinchoku_ingest_events_total{{{D}}}{RATE}))",
                    "{{outcome}}",
                ),
            ),
            description="Events received per second: accepted, duplicate, rejected, in_flight, "
            "unavailable.",
            unit="ops",
            stack=True,
        ),
        Panel(
            "Rejections by reason",
            "timeseries",
            (
                Query(
                    "sum by (reason) (rate(shinchoku_ingest_events_total"
                    f'{{{D}, outcome="rejected"}}{RATE}))',
                    "{{reason}}",
                ),
                Query(
                    f"sum by (reason) (rate(shinchoku_ingest_auth_failures_total{{{D}}}{RATE}))",
                    "auth: {{reason}}",
                ),
                Query(
                    f"sum(rate(shinchoku_ingest_rate_limited_requests_total{{{D}}}{RATE}))",
                    "rate limited",
                    may_be_empty="counted per ministry from the first 429; none until a key "
                    "exceeds its rate limit",
                ),
            ),
            description="Events refused by validation (by reason code), requests refused for "
            "their API key, and requests answered 429.",
            unit="ops",
        ),
        Panel(
            "Accepted events by ministry",
            "timeseries",
            (
                Query(
                    "sum by (ministry) (rate(shinchoku_ingest_events_total"
                    f'{{{D}, outcome="accepted"}}{RATE}))',
                    "{{ministry}}",
                ),
            ),
            description="Per the API key's ministry.",
            unit="ops",
            stack=True,
        ),
        Panel(
            "Ingest produce latency",
            "timeseries",
            (
                Query(quantile(0.5, "shinchoku_ingest_produce_duration_seconds"), "p50"),
                Query(quantile(0.99, "shinchoku_ingest_produce_duration_seconds"), "p99"),
            ),
            description="From handing a request's records to the producer to the broker's "
            "acknowledgement of all of them.",
            unit="s",
        ),
        row("Processing"),
        Panel(
            "Consumer lag by service",
            "timeseries",
            (
                Query(f"service:shinchoku_consumer_lag_records:sum{{{D}}}", "{{service}} lag"),
                Query(
                    f"service:shinchoku_consumer_backlog_growth_records:increase15m{{{D}}}",
                    "{{service}} backlog growth (15m)",
                ),
            ),
            description="Lag: records not yet consumed, as the consumer reports it. Backlog "
            "growth: records produced onto its topic minus records it consumed in 15 minutes "
            "(grows also while a consumer is stuck).",
        ),
        Panel(
            "Processing lag (p99)",
            "timeseries",
            (
                Query(
                    f"service:shinchoku_consumer_event_age_seconds:p99_rate5m{{{D}}}",
                    "{{service}} consumer",
                ),
            ),
            description="A record's write to its topic (for kpi: the event's acceptance by "
            "ingest) to its handler finishing (for kpi: the KPI's status stored and any status "
            "change published).",
            unit="s",
        ),
        Panel(
            "Events processed /s",
            "timeseries",
            (
                Query(
                    "sum by (service, event_type) (rate(shinchoku_consumer_events_total"
                    f'{{{D}, outcome="processed"}}{RATE}))',
                    "{{service}} {{event_type}}",
                ),
            ),
            unit="ops",
        ),
        Panel(
            "Dead letters and retries /s",
            "timeseries",
            (
                Query(
                    "sum by (service, reason) "
                    f"(rate(shinchoku_consumer_dead_letters_total{{{D}}}{RATE}))",
                    "{{service}} dead letter: {{reason}}",
                ),
                Query(
                    "sum by (service) "
                    f"(rate(shinchoku_consumer_handler_retries_total{{{D}}}{RATE}))",
                    "{{service}} handler retries",
                    may_be_empty="counted from the first retry; none while MongoDB and Kafka "
                    "answer",
                ),
            ),
            description="Records sent to the dead-letter topic by reason, and handler calls "
            "retried (database or broker trouble).",
            unit="ops",
        ),
        Panel(
            "API latency (p99)",
            "timeseries",
            (
                Query(
                    f"service:shinchoku_http_request_duration_seconds:p99_rate5m{{{D}}}",
                    "{{service}}",
                ),
            ),
            description="HTTP request latency of each service's API (probes and /metrics left "
            "out).",
            unit="s",
        ),
        Panel(
            "Consumer batch duration (p99)",
            "timeseries",
            (
                Query(
                    quantile(
                        0.99, "shinchoku_consumer_batch_duration_seconds", "service, event_type"
                    ),
                    "{{service}} {{event_type}}",
                ),
            ),
            description="Time a handler took for one batch of events of one type.",
            unit="s",
        ),
        row("Webhook deliveries"),
        Panel(
            "Webhook attempts by result",
            "timeseries",
            (
                Query(
                    "sum by (result) "
                    f"(rate(shinchoku_alerts_delivery_attempts_total{{{D}}}{RATE}))",
                    "{{result}}",
                ),
            ),
            unit="ops",
            stack=True,
        ),
        Panel(
            "Webhook failure ratio",
            "timeseries",
            (
                Query(
                    f"deployment:shinchoku_alerts_delivery_attempts_failed:ratio_rate5m{{{D}}}",
                    "failed attempts / attempts (5m)",
                ),
            ),
            description="Share of attempts that did not get a 2xx (alert above 25 %).",
            unit="percentunit",
        ),
        Panel(
            "Delivery latency",
            "timeseries",
            (
                Query(quantile(0.5, "shinchoku_alerts_delivery_latency_seconds"), "p50"),
                Query(quantile(0.99, "shinchoku_alerts_delivery_latency_seconds"), "p99"),
            ),
            description="From a status change to the receiver's 2xx, per notification "
            "delivered (grouping windows and retries included).",
            unit="s",
        ),
        Panel(
            "Deliveries pending and failing",
            "timeseries",
            (
                Query(
                    f"max by (state) (shinchoku_alerts_deliveries_queued{{{D}}})",
                    "{{state}}",
                ),
                Query(f"max(shinchoku_alerts_deliveries_retrying{{{D}}})", "retrying"),
            ),
            description="Webhook messages queued: pending (to send), held (subscription paused "
            "or disabled), retrying (pending after a failed attempt). Every alerts instance "
            "counts the shared queue, hence max.",
        ),
        Panel(
            "Notifications by outcome",
            "timeseries",
            (
                Query(
                    f"sum by (outcome) (rate(shinchoku_alerts_notifications_total{{{D}}}{RATE}))",
                    "{{outcome}}",
                ),
            ),
            description="recorded, duplicate, muted, released, dropped, reminder, delivered, "
            "failed (retries exhausted).",
            unit="ops",
        ),
        Panel(
            "Subscriptions by state",
            "bargauge",
            (
                Query(
                    f"max by (state) (shinchoku_alerts_subscriptions{{{D}}})",
                    "{{state}}",
                    instant=True,
                ),
            ),
            description="Active, paused, and disabled (endpoint gone or failing too long).",
            options={"orientation": "horizontal", "displayMode": "basic"},
        ),
    ),
)

DASHBOARD_SET = (PLAN_PROGRESS, PIPELINE_HEALTH)


# -------------------------------------------------------------------------------------------
# JSON rendering (Grafana dashboard schema, as Grafana 11/12 provisioning reads it)


def _target(query: Query, ref: str) -> dict[str, Any]:
    target: dict[str, Any] = {
        "refId": ref,
        "datasource": dict(DATASOURCE),
        "editorMode": "code",
        "expr": query.expr,
        "legendFormat": query.legend or "__auto",
        "range": not query.instant,
        "instant": query.instant,
    }
    if query.table:
        target["format"] = "table"
    return target


def _field_config(panel: Panel) -> dict[str, Any]:
    defaults: dict[str, Any] = {
        "unit": panel.unit,
        "mappings": list(panel.mappings),
        "thresholds": {
            "mode": "absolute",
            "steps": [{"color": color, "value": value} for value, color in panel.thresholds],
        },
    }
    if panel.no_value is not None:
        defaults["noValue"] = panel.no_value
    if panel.kind == "timeseries":
        defaults["custom"] = {
            "drawStyle": "bars" if panel.bars else "line",
            "fillOpacity": 60 if panel.bars else 10,
            "lineWidth": 1,
            "showPoints": "never",
            "spanNulls": False,
            "stacking": {"mode": "normal" if panel.stack else "none", "group": "A"},
        }
    return {"defaults": defaults, "overrides": []}


def _options(panel: Panel) -> dict[str, Any]:
    if panel.kind == "timeseries":
        options: dict[str, Any] = {
            "legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
            "tooltip": {"mode": "multi", "sort": "desc"},
        }
    elif panel.kind in ("stat", "bargauge"):
        options = {
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
        }
        if panel.kind == "stat":
            options.update(colorMode="value", graphMode="none", textMode="auto")
    else:
        options = {"showHeader": True, "cellHeight": "sm"}
    options.update(panel.options)
    return options


def _layout(panels: Sequence[Panel]) -> list[dict[str, int]]:
    """Left to right, wrapping at the grid width; a row starts on a line of its own."""
    positions = []
    x = y = line_height = 0
    for panel in panels:
        if panel.kind == "row" or x + panel.width > GRID_WIDTH:
            y += line_height
            x = line_height = 0
        positions.append({"h": panel.height, "w": panel.width, "x": x, "y": y})
        x += panel.width
        line_height = max(line_height, panel.height)
        if panel.kind == "row":
            y += line_height
            x = line_height = 0
    return positions


def _panel(panel: Panel, panel_id: int, grid: dict[str, int]) -> dict[str, Any]:
    if panel.kind == "row":
        return {
            "id": panel_id,
            "type": "row",
            "title": panel.title,
            "collapsed": False,
            "gridPos": grid,
            "panels": [],
        }
    rendered: dict[str, Any] = {
        "id": panel_id,
        "type": panel.kind,
        "title": panel.title,
        "description": panel.description,
        "datasource": dict(DATASOURCE),
        "gridPos": grid,
        "targets": [_target(q, chr(ord("A") + i)) for i, q in enumerate(panel.queries)],
        "fieldConfig": _field_config(panel),
        "options": _options(panel),
    }
    if panel.transformations:
        rendered["transformations"] = [dict(t) for t in panel.transformations]
    return rendered


def _variable(variable: Variable) -> dict[str, Any]:
    return {
        "name": variable.name,
        "label": variable.label,
        "type": "query",
        "datasource": dict(DATASOURCE),
        "definition": variable.query,
        "query": {"qryType": 1, "query": variable.query, "refId": variable.name},
        "refresh": 2,
        "includeAll": True,
        "allValue": ".*",
        "multi": variable.multi,
        "current": (
            {"selected": True, "text": ["All"], "value": ["$__all"]}
            if variable.multi
            else {"selected": True, "text": "All", "value": "$__all"}
        ),
        "options": [],
        "regex": "",
        "sort": 1,
        "hide": 0,
    }


def render(dashboard: Dashboard) -> dict[str, Any]:
    grid = _layout(dashboard.panels)
    return {
        "uid": dashboard.uid,
        "title": dashboard.title,
        "description": dashboard.description,
        "tags": ["shinchoku"],
        "editable": False,
        "graphTooltip": 1,
        "refresh": "30s",
        "schemaVersion": 41,
        "version": 1,
        "time": {"from": "now-6h", "to": "now"},
        "timepicker": {},
        "timezone": "browser",
        "annotations": {"list": []},
        "links": [
            {
                "title": "Shinchoku dashboards",
                "type": "dashboards",
                "tags": ["shinchoku"],
                "asDropdown": False,
                "includeVars": True,
                "keepTime": True,
            }
        ],
        "templating": {"list": [_variable(v) for v in dashboard.variables]},
        "panels": [
            _panel(panel, number, position)
            for number, (panel, position) in enumerate(
                zip(dashboard.panels, grid, strict=True), start=1
            )
        ],
    }


def rendered_files() -> dict[str, str]:
    """File name -> JSON text, exactly as committed."""
    return {
        dashboard.filename: json.dumps(render(dashboard), indent=2, ensure_ascii=False) + "\n"
        for dashboard in DASHBOARD_SET
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Write the dashboards; with --check, only report whether the committed files are current."""
    check = "--check" in (sys.argv[1:] if argv is None else argv)
    stale = []
    for name, text in rendered_files().items():
        path = DASHBOARDS / name
        if path.exists() and path.read_text(encoding="utf-8") == text:
            continue
        stale.append(name)
        if not check:
            path.write_text(text, encoding="utf-8")
    if check and stale:
        print(f"out of date: {', '.join(stale)} (run python3 deploy/grafana/generate.py)")
        return 1
    print("up to date" if not stale else f"wrote {', '.join(stale)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""What the dashboards and rules tests share: the services' metric names (from the registries
their Metrics.create() fill), the recording rules, the dashboards generator, and a small
PromQL reader that finds the metric names an expression selects."""

from __future__ import annotations

import importlib.util
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import yaml
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from services.alerts.metrics import AlertsMetrics
from services.ingest.metrics import IngestMetrics
from services.kpi.metrics import KpiMetrics
from shared.metrics import ConsumerMetrics, HttpMetrics

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS = ROOT / "deploy" / "prometheus"
GRAFANA = ROOT / "deploy" / "grafana"

# As each service's bootstrap builds its registry (the HTTP metrics come from the app shell).
SERVICE_REGISTRIES: dict[str, tuple[Any, ...]] = {
    "ingest": (IngestMetrics,),
    "kpi": (KpiMetrics, ConsumerMetrics),
    "alerts": (AlertsMetrics, ConsumerMetrics),
}
_SUFFIXES = {
    "counter": ("_total",),
    "histogram": ("_bucket", "_sum", "_count"),
    "summary": ("", "_sum", "_count"),
    "gauge": ("",),
    "info": ("_info",),
}


def service_registry(service: str) -> CollectorRegistry:
    registry = CollectorRegistry()
    HttpMetrics.create(service, registry)
    for metrics in SERVICE_REGISTRIES[service]:
        if metrics is ConsumerMetrics:
            metrics.create(service, registry)
        else:
            metrics.create(registry)
    return registry


def populated(service: str) -> CollectorRegistry:
    """The service's registry with one series per labelled metric (as after some traffic)."""
    registry = service_registry(service)
    for collector in list(registry._collector_to_names):
        metric = collector
        labelnames = getattr(collector, "_labelnames", ())
        if labelnames:
            metric = collector.labels(*["x"] * len(labelnames))  # type: ignore[attr-defined]
        if isinstance(collector, Histogram):
            metric.observe(0.5)  # type: ignore[attr-defined]
        elif isinstance(collector, Counter):
            metric.inc()  # type: ignore[attr-defined]
        elif isinstance(collector, Gauge):
            metric.set(1)  # type: ignore[attr-defined]
    return registry


def dashboard_query_rules(deployment: str) -> list[dict[str, str]]:
    """Every dashboard query with its variables filled in as Grafana would for `deployment`,
    as recording rules `promtool check rules` can parse."""
    values = grafana_values(deployment)
    return [
        {"record": f"panel_query_{number}", "expr": substitute(query.expr, values)}
        for number, (_, _, query) in enumerate(dashboard_queries())
    ]


def family_names(service: str) -> dict[str, str]:
    """Metric family name -> type, as the service's /metrics declares them (# TYPE lines)."""
    found = {}
    for family in service_registry(service).collect():
        name = family.name + ("_total" if family.type == "counter" else "")
        found[name] = family.type
    return found


def sample_names() -> set[str]:
    """Every series name the three services can expose, plus Prometheus' own `up`."""
    names = {"up"}
    for service in SERVICE_REGISTRIES:
        for family in service_registry(service).collect():
            names |= {family.name + suffix for suffix in _SUFFIXES[family.type]}
    return names


def rule_groups() -> Iterator[dict[str, Any]]:
    for path in sorted((PROMETHEUS / "rules").glob("*.yml")):
        yield from yaml.safe_load(path.read_text())["groups"]


def recording_rules() -> dict[str, str]:
    return {
        rule["record"]: rule["expr"]
        for group in rule_groups()
        for rule in group["rules"]
        if "record" in rule
    }


def alerting_rules() -> dict[str, str]:
    return {
        rule["alert"]: rule["expr"]
        for group in rule_groups()
        for rule in group["rules"]
        if "alert" in rule
    }


_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'')
_CLAUSES = re.compile(
    r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", re.IGNORECASE
)
_IDENTIFIER = re.compile(r"(?<![\w:.$])([A-Za-z_:][\w:]*)(?![\w:])(\s*\()?")
_KEYWORDS = {"and", "or", "unless", "bool", "offset", "by", "without", "inf", "nan"}


def metric_names(expr: str) -> set[str]:
    """The metric names an expression selects (functions, keywords and labels left out)."""
    text = _STRINGS.sub('""', expr)
    text = re.sub(r"\{[^}]*\}", " ", text)
    text = re.sub(r"\[[^\]]*\]", " ", text)
    text = _CLAUSES.sub(" ", text)
    text = re.sub(r"\boffset\s+-?[$\w]+", " ", text)
    names = set()
    for match in _IDENTIFIER.finditer(text):
        name, call = match.group(1), match.group(2)
        if call or name.lower() in _KEYWORDS:
            continue
        names.add(name)
    return names


def generator() -> ModuleType:
    """deploy/grafana/generate.py (standard library only; importing it writes nothing)."""
    name = "shinchoku_grafana_generate"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, GRAFANA / "generate.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the file executes
    spec.loader.exec_module(module)
    return module


def dashboard_queries() -> Iterator[tuple[str, str, Any]]:
    """(dashboard title, panel title, Query) for every query of every panel."""
    module = generator()
    for dashboard in module.DASHBOARD_SET:
        for panel in dashboard.panels:
            for query in panel.queries:
                yield dashboard.title, panel.title, query


def regex_value(value: str) -> str:
    """A literal value inside a PromQL regex matcher's string, as Grafana escapes one: regex
    metacharacters get a backslash, itself escaped for the double-quoted PromQL string."""
    return re.sub(r"([\\.^$*+?()\[\]{}|])", r"\\\\\1", value)


def grafana_values(deployment: str) -> dict[str, str]:
    """What Grafana substitutes for the variables the queries use, for one deployment."""
    return {
        "$deployment": regex_value(deployment),
        "$ministry": ".*",
        "$__rate_interval": "5m",
        "$__range": "1h",
    }


def substitute(expr: str, values: dict[str, str]) -> str:
    for variable in sorted(values, key=len, reverse=True):
        expr = expr.replace(variable, values[variable])
    return expr

"""Prometheus configuration and rules: what can be read without promtool. promtool's own checks
(`check rules`, `test rules`, `check config`) run in tests/integration/test_prometheus_rules.py."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from tests.support.kafka_broker import local_stack_module
from tests.support.promql import (
    PROMETHEUS,
    alerting_rules,
    metric_names,
    recording_rules,
    rule_groups,
    sample_names,
)

SERVICES = ("ingest", "kpi", "alerts")


def rule_tests() -> dict[str, Any]:
    tests: dict[str, Any] = yaml.safe_load((PROMETHEUS / "tests" / "pipeline.test.yml").read_text())
    return tests


def test_the_rule_tests_load_every_rule_file_and_test_each_alert_both_ways() -> None:
    """pipeline.test.yml (which `promtool test rules` runs) loads every rule file, and each
    alert is tested both firing and staying silent."""
    tests = rule_tests()
    loaded = {(PROMETHEUS / "tests" / f).resolve() for f in tests["rule_files"]}
    assert loaded == {p.resolve() for p in (PROMETHEUS / "rules").glob("*.yml")}
    cases = [case for test in tests["tests"] for case in test.get("alert_rule_test", [])]
    defined = set(alerting_rules())
    assert {
        "ShinchokuServiceDown",
        "ShinchokuConsumerLagGrowing",
        "ShinchokuDeadLetters",
        "ShinchokuWebhookFailureRatioHigh",
        "ShinchokuStatusProcessingLagHigh",
        "ShinchokuConsumerStuck",
    } <= defined
    for name in defined:
        outcomes = [bool(case["exp_alerts"]) for case in cases if case["alertname"] == name]
        assert True in outcomes, f"{name}: no test where it fires"
        assert False in outcomes, f"{name}: no test where it stays silent"


def test_every_rule_reads_metrics_the_services_define() -> None:
    """Each metric a rule reads is in a service's registry or is a recording rule defined
    before it is needed (no typo silently matching nothing)."""
    known = sample_names() | set(recording_rules())
    for name, expr in {**recording_rules(), **alerting_rules()}.items():
        names = metric_names(expr)
        assert names, name
        assert names <= known, (name, names - known)


def test_every_aggregation_keeps_the_deployment_label() -> None:
    """`sum by (...)` and friends in the rules keep `deployment`, so the dashboards' deployment
    variable (and tests scraping their own services) can tell runs apart."""
    for group in rule_groups():
        for rule in group["rules"]:
            for clause in re.findall(r"\bby\s*\(([^)]*)\)", rule["expr"]):
                labels = {label.strip() for label in clause.split(",")}
                assert labels == {"le"} or "deployment" in labels, (
                    rule.get("record") or rule.get("alert"),
                    clause,
                )


def test_recording_rules_follow_the_level_metric_operations_convention() -> None:
    """Recorded names are `level:metric:operations`, the metric part one of ours."""
    for name in recording_rules():
        level, metric, operations = name.split(":")
        assert level, name
        assert operations, name
        assert metric.startswith("shinchoku_"), name


def test_the_compose_configuration_labels_every_target_with_its_deployment() -> None:
    """Each scrape job of the compose configuration carries `service` and `deployment: compose`
    labels."""
    config = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert set(jobs) == {f"shinchoku-{service}" for service in SERVICES}
    for service in SERVICES:
        (static,) = jobs[f"shinchoku-{service}"]["static_configs"]
        assert static["labels"] == {"service": service, "deployment": "compose"}


def test_the_local_rendering_scrapes_the_local_services(tmp_path: Path) -> None:
    """The configuration deploy/local/stack.py renders from the compose one scrapes the three
    local services as `deployment: local`, and reads file_sd targets for the services tests
    start."""
    stack = local_stack_module()
    config = stack.render_local_prometheus_config(tmp_path / "prometheus.yml")
    rendered = yaml.safe_load(config.read_text())
    jobs = {job["job_name"]: job for job in rendered["scrape_configs"]}
    # The ports the stack renders with: 8001-8003 unless SHINCHOKU_*_PORT move them.
    for service in SERVICES:
        port = stack.SERVICE_PORTS[service]
        job = jobs[f"shinchoku-{service}"]
        (static,) = job["static_configs"]
        assert static["targets"] == [f"127.0.0.1:{port}"]
        assert static["labels"] == {"service": service, "deployment": "local"}
        (file_sd,) = job["file_sd_configs"]
        assert file_sd["files"] == [f"{stack.PROMETHEUS_TARGETS}/{service}-*.json"]

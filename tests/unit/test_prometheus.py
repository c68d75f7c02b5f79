"""Prometheus configuration and rules are valid, and every alerting rule behaves as tested.

promtool comes with Debian's prometheus package, which `make test` installs.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.kafka_broker import local_stack_module
from tests.support.promql import (
    PROMETHEUS,
    ROOT,
    alerting_rules,
    metric_names,
    recording_rules,
    rule_groups,
    sample_names,
)

SERVICES = ("ingest", "kpi", "alerts")


def promtool(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    tool = shutil.which("promtool")
    if tool is None:
        pytest.fail("promtool is missing: `make test` installs Debian's prometheus package")
    return subprocess.run(
        [tool, *args], cwd=cwd, capture_output=True, text=True, timeout=60, check=False
    )


def rule_tests() -> dict[str, Any]:
    tests: dict[str, Any] = yaml.safe_load((PROMETHEUS / "tests" / "pipeline.test.yml").read_text())
    return tests


def test_the_rule_files_are_valid() -> None:
    """`promtool check rules` accepts every rule file."""
    rules = sorted(str(p) for p in (PROMETHEUS / "rules").glob("*.yml"))
    assert len(rules) >= 2
    result = promtool("check", "rules", *rules)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alerting_rule_passes_its_unit_tests() -> None:
    """`promtool test rules` passes; it loads every rule file, and each alert is tested both
    firing and staying silent."""
    result = promtool("test", "rules", "pipeline.test.yml", cwd=PROMETHEUS / "tests")
    assert result.returncode == 0, result.stdout + result.stderr
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
    """The compose configuration passes `promtool check config`, and each scrape job carries
    `service` and `deployment: compose` labels."""
    result = promtool("check", "config", str(PROMETHEUS / "prometheus.yml"))
    assert result.returncode == 0, result.stdout + result.stderr
    config = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert set(jobs) == {f"shinchoku-{service}" for service in SERVICES}
    for service in SERVICES:
        (static,) = jobs[f"shinchoku-{service}"]["static_configs"]
        assert static["labels"] == {"service": service, "deployment": "compose"}


def test_the_local_rendering_of_the_configuration_is_valid() -> None:
    """The configuration deploy/local/stack.py renders from the compose one passes
    `promtool check config`, its rules included, scrapes the three local services as
    `deployment: local`, and reads file_sd targets for the services tests start."""
    stack = local_stack_module()
    config = stack.render_local_prometheus_config()
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
    result = promtool("check", "config", str(config))
    assert result.returncode == 0, result.stdout + result.stderr

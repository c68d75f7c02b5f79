"""promtool accepts the Prometheus configuration, the rules, the dashboards' queries and every
service's metrics, and every alerting rule passes its unit tests.

promtool comes with Debian's prometheus package, which the local stack installs; these run in
the integration tier so that the unit tier needs nothing outside the repository.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from prometheus_client import generate_latest

from tests.support.kafka_broker import local_stack_module
from tests.support.promql import (
    PROMETHEUS,
    ROOT,
    SERVICE_REGISTRIES,
    dashboard_query_rules,
    populated,
)

pytestmark = pytest.mark.integration


def promtool(
    *args: str, cwd: Path = ROOT, stdin: bytes | None = None
) -> subprocess.CompletedProcess[bytes]:
    tool = shutil.which("promtool")
    if tool is None:
        pytest.fail("promtool is missing: `make test` installs Debian's prometheus package")
    return subprocess.run(
        [tool, *args], cwd=cwd, input=stdin, capture_output=True, timeout=60, check=False
    )


def output(result: subprocess.CompletedProcess[bytes]) -> str:
    return (result.stdout + result.stderr).decode()


def test_the_rule_files_are_valid() -> None:
    """`promtool check rules` accepts every rule file."""
    rules = sorted(str(p) for p in (PROMETHEUS / "rules").glob("*.yml"))
    assert len(rules) >= 2
    result = promtool("check", "rules", *rules)
    assert result.returncode == 0, output(result)


def test_every_alerting_rule_passes_its_unit_tests() -> None:
    """`promtool test rules` passes on pipeline.test.yml (which tests each alert both firing
    and staying silent: tests/unit/test_prometheus.py)."""
    result = promtool("test", "rules", "pipeline.test.yml", cwd=PROMETHEUS / "tests")
    assert result.returncode == 0, output(result)


def test_the_compose_configuration_is_valid() -> None:
    """`promtool check config` accepts the compose configuration."""
    result = promtool("check", "config", str(PROMETHEUS / "prometheus.yml"))
    assert result.returncode == 0, output(result)


def test_the_local_rendering_of_the_configuration_is_valid(tmp_path: Path) -> None:
    """The configuration deploy/local/stack.py renders from the compose one passes
    `promtool check config`, its rules included."""
    config = local_stack_module().render_local_prometheus_config(tmp_path / "prometheus.yml")
    result = promtool("check", "config", str(config))
    assert result.returncode == 0, output(result)


def test_every_dashboard_query_is_valid_promql(tmp_path: Path) -> None:
    """With their variables filled in as Grafana would, `promtool check rules` parses every
    dashboard query."""
    rules = dashboard_query_rules("test-deployment")
    assert rules
    rule_file = tmp_path / "dashboard-queries.rules.yml"
    rule_file.write_text(yaml.safe_dump({"groups": [{"name": "panels", "rules": rules}]}))
    result = promtool("check", "rules", str(rule_file))
    assert result.returncode == 0, output(result)


@pytest.mark.parametrize("service", sorted(SERVICE_REGISTRIES))
def test_promtool_check_metrics_is_clean_on_every_service(service: str) -> None:
    """`promtool check metrics` on the exposition of every metric a service defines prints no
    problem (names, units, help, counters' _total)."""
    result = promtool("check", "metrics", stdin=generate_latest(populated(service)))
    assert result.returncode == 0, output(result)
    assert not output(result).strip()

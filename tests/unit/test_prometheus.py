"""Prometheus configuration and rules are valid, and every alerting rule behaves as tested.

promtool comes with Debian's prometheus package, which `make test` installs.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.support.kafka_broker import local_stack_module

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS = ROOT / "deploy" / "prometheus"


def promtool(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    tool = shutil.which("promtool")
    if tool is None:
        pytest.fail("promtool is missing: `make test` installs Debian's prometheus package")
    return subprocess.run(
        [tool, *args], cwd=cwd, capture_output=True, text=True, timeout=60, check=False
    )


def test_the_rule_files_are_valid() -> None:
    """`promtool check rules` accepts every rule file."""
    rules = sorted(str(p) for p in (PROMETHEUS / "rules").glob("*.yml"))
    assert rules
    result = promtool("check", "rules", *rules)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alerting_rule_passes_its_unit_tests() -> None:
    """`promtool test rules` passes, and each alert the rules define is exercised by a test."""
    result = promtool("test", "rules", "pipeline.test.yml", cwd=PROMETHEUS / "tests")
    assert result.returncode == 0, result.stdout + result.stderr
    defined = {
        line.split(":", 1)[1].strip()
        for line in (PROMETHEUS / "rules" / "pipeline.yml").read_text().splitlines()
        if line.strip().startswith("- alert:")
    }
    tested = (PROMETHEUS / "tests" / "pipeline.test.yml").read_text()
    assert all(f"alertname: {name}" in tested for name in defined), defined


def test_the_local_rendering_of_the_configuration_is_valid() -> None:
    """The configuration deploy/local/stack.py renders from the compose one passes
    `promtool check config`, its rules included, and scrapes the three local services."""
    config = local_stack_module().render_local_prometheus_config()
    rendered = config.read_text()
    assert all(f"127.0.0.1:{port}" in rendered for port in (8001, 8002, 8003))
    result = promtool("check", "config", str(config))
    assert result.returncode == 0, result.stdout + result.stderr

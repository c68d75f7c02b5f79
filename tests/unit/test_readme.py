"""The README tells a developer how to allow a local webhook receiver, by a setting the alerts
service has, and warns that production should not."""

from __future__ import annotations

import re
from pathlib import Path

from services.alerts.settings import AlertsSettings

ROOT = Path(__file__).resolve().parents[2]


def test_the_readme_names_the_setting_that_allows_a_local_receiver() -> None:
    readme = (ROOT / "README.md").read_text()
    names = set(re.findall(r"SHINCHOKU_ALERTS_([A-Z_]+)", readme))
    assert "ALLOWED_TARGET_NETWORKS" in names
    assert "allowed_target_networks" in AlertsSettings.model_fields
    assert AlertsSettings().allowed_target_networks == []  # refused unless allowed
    section = readme[readme.index("ALLOWED_TARGET_NETWORKS") :][:1500]
    assert "127.0.0.1/32" in section
    assert "production" in section.lower()


def layout_section(readme: str) -> str:
    start = readme.index("## Layout\n")
    following = readme.find("\n## ", start + 1)
    return readme[start : following if following != -1 else len(readme)]


def test_the_layout_names_every_top_level_folder() -> None:
    """A newcomer finds every folder of the repository in the README's layout section (the
    ones git ignores, such as .venv/ or bench-results/, aside)."""
    layout = layout_section((ROOT / "README.md").read_text())
    ignored = {
        line.strip().strip("/")
        for line in (ROOT / ".gitignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    folders = {
        path.name
        for path in ROOT.iterdir()
        if path.is_dir() and not path.name.startswith((".", "_")) and path.name not in ignored
    }
    assert {"services", "shared", "tests", "benchmarks", "tools", "docs", "demo"} <= folders
    for name in folders:
        assert f"\n{name}/" in layout, f"{name}/ is missing from the README's layout"


def test_the_layout_describes_the_service_layout_and_the_contract_tests() -> None:
    """Each part of a service's layout, and where the port contract tests live, is named."""
    layout = layout_section((ROOT / "README.md").read_text())
    for part in (
        "domain/",
        "ports.py",
        "service/",
        "adapters/",
        "memory.py",
        "entrypoints/",
        "composition.py",
        "bootstrap.py",
        "support/contracts/",
        "tests/unit/<name>/test_memory_adapters.py",
        "tests/integration/test_<name>_adapters_contract.py",
    ):
        assert part in layout, part

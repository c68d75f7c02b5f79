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

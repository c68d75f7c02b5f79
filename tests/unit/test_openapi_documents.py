"""The three OpenAPI documents: info.version is the package's version, and every operation
(webhooks included) carries a tag the document declares with a description."""

from __future__ import annotations

import tomllib
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI

from services.alerts.bootstrap import create_app as create_alerts
from services.alerts.settings import AlertsSettings
from services.ingest.bootstrap import create_app as create_ingest
from services.ingest.settings import IngestSettings
from services.kpi.bootstrap import create_app as create_kpi
from services.kpi.settings import KpiSettings

ROOT = Path(__file__).resolve().parents[2]
FACTORIES: dict[str, Callable[[], FastAPI]] = {
    "ingest": lambda: create_ingest(IngestSettings()),
    "kpi": lambda: create_kpi(KpiSettings()),
    "alerts": lambda: create_alerts(AlertsSettings()),
}


@pytest.fixture(params=sorted(FACTORIES), scope="module")
def document(request: pytest.FixtureRequest) -> dict[str, Any]:
    return FACTORIES[request.param]().openapi()


def test_info_version_is_the_package_version(document: dict[str, Any]) -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert document["info"]["version"] == project["version"] == version("shinchoku")


def test_every_operation_has_a_declared_tag(document: dict[str, Any]) -> None:
    declared = {tag["name"]: tag.get("description") for tag in document.get("tags", [])}
    assert all(declared.values()), declared
    for section in ("paths", "webhooks"):
        for path, operations in document.get(section, {}).items():
            for method, operation in operations.items():
                tags = operation.get("tags")
                assert tags, (section, path, method)
                assert set(tags) <= set(declared), (path, method, tags)

"""The domain and service layers of every service import no infrastructure library.

Each module is imported in a fresh interpreter and its ``sys.modules`` is checked afterwards, so an
indirect import (through ``shared`` or another module) counts as much as a direct one. The layers:
``services/<name>/domain/`` (pure decisions), ``services/<name>/service/`` (use cases, talking to
ports) and ``services/<name>/ports.py`` (the protocols and records the use cases speak). Modules
still named ``handlers``/``commands`` are held to the same rule: they are service-layer code.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ("ingest", "kpi", "alerts")
FORBIDDEN = (
    "pymongo",
    "bson",
    "motor",
    "aiokafka",
    "kafka",
    "httpx",
    "fastapi",
    "starlette",
    "uvicorn",
)


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def layered_modules() -> list[str]:
    modules: list[str] = []
    for service in SERVICES:
        base = ROOT / "services" / service
        for layer in ("domain", "service"):
            modules += [_module_name(p) for p in sorted((base / layer).rglob("*.py"))]
        for name in ("ports.py", "handlers.py", "commands.py"):
            if (base / name).exists():
                modules.append(_module_name(base / name))
        modules += [_module_name(p) for p in sorted(base.glob("handlers_*.py"))]
    return modules


PROBE = """
import importlib, json, sys
importlib.import_module(sys.argv[1])
roots = {name.split(".")[0] for name in sys.modules}
print(json.dumps(sorted(roots & set(json.loads(sys.argv[2])))))
"""


def test_every_service_has_a_domain_layer_to_check() -> None:
    modules = layered_modules()
    for service in SERVICES:
        assert any(m.startswith(f"services.{service}.domain") for m in modules), service


@pytest.mark.parametrize("module", layered_modules())
def test_layer_imports_no_infrastructure_library(module: str) -> None:
    probe = subprocess.run(
        [sys.executable, "-c", PROBE, module, json.dumps(FORBIDDEN)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert probe.returncode == 0, probe.stderr
    assert json.loads(probe.stdout) == [], f"{module} pulls in {probe.stdout.strip()}"

"""Benchmarks and the harness they share with the tests build on public interfaces: nothing
under benchmarks/ or harness/ imports the test suite."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module is not None and node.level == 0:
            found.add(node.module)
    return found


@pytest.mark.parametrize(
    "path",
    sorted(
        path
        for folder in ("benchmarks", "harness")
        for path in (ROOT / folder).glob("*.py")
        if path.name != "__init__.py"
    ),
    ids=lambda path: str(path.relative_to(ROOT)),
)
def test_imports_nothing_from_the_test_suite(path: Path) -> None:
    """Tests may import benchmarks' and harness' code, never the other way round."""
    modules = imported_modules(path)
    assert modules, path
    assert not {m for m in modules if m == "tests" or m.startswith("tests.")}, path

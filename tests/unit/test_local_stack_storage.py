"""The local stack's storage: FerretDB on PostgreSQL unless told otherwise (deploy/local/stack.py,
read without starting anything)."""

from __future__ import annotations

import os
from types import ModuleType

import pytest

from tests.support.kafka_broker import local_stack_module


def fresh_stack_module() -> ModuleType:
    """deploy/local/stack.py loaded now (it reads its environment variables on import)."""
    module: ModuleType = local_stack_module.__wrapped__()
    return module


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(os.environ):
        if key.startswith(("SHINCHOKU_FERRETDB", "SHINCHOKU_POSTGRES")):
            monkeypatch.delenv(key)


def test_local_ferretdb_stores_in_postgresql_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    """The local stack starts PostgreSQL before FerretDB and points FerretDB's PostgreSQL
    handler at it; PostgreSQL runs as its own account (it refuses root) and stops fast."""
    monkeypatch.setenv("SHINCHOKU_POSTGRES_PORT", "25432")
    stack = fresh_stack_module()
    order = [component.name for component in stack.INFRASTRUCTURE]
    assert order.index("postgres") < order.index("ferretdb")
    command = stack.FERRETDB.command()
    assert "-handler=postgresql" in command
    assert "-postgresql-url=postgres://postgres@127.0.0.1:25432/ferretdb" in command
    assert stack.POSTGRES.user == "postgres"
    assert "--listen_addresses=127.0.0.1" in stack.postgres_command()
    assert "25432" in stack.postgres_command()


def test_local_ferretdb_on_sqlite_when_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    """SHINCHOKU_FERRETDB_BACKEND=sqlite: no PostgreSQL started, FerretDB on its SQLite folder;
    `stop` still stops a PostgreSQL left running."""
    monkeypatch.setenv("SHINCHOKU_FERRETDB_BACKEND", "sqlite")
    stack = fresh_stack_module()
    assert "postgres" not in [component.name for component in stack.INFRASTRUCTURE]
    assert "postgres" in [component.name for component in stack.ALL_INFRASTRUCTURE]
    command = stack.FERRETDB.command()
    assert "-handler=sqlite" in command
    assert f"-sqlite-url=file:{stack.FERRETDB_DATA}/" in command

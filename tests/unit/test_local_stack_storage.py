"""The local stack's storage: FerretDB on PostgreSQL unless told otherwise (deploy/local/stack.py,
read without starting anything)."""

from __future__ import annotations

import os
from pathlib import Path
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


def test_the_cluster_moves_where_postgres_can_reach_it_when_the_checkout_is_closed(
    tmp_path: Path,
) -> None:
    """Run as root from a folder only root may enter, the cluster goes to the postgres account's
    home (one per cache folder); otherwise it stays in the cache; an explicit folder wins."""
    stack = fresh_stack_module()
    closed = tmp_path / "closed"
    closed.mkdir(mode=0o700)
    closed.chmod(0o700)
    default = closed / "cache" / "stack" / "postgres" / "data"
    moved = stack.postgres_data_dir(None, default, as_root=True)
    assert moved.parts[:4] == ("/", "var", "lib", "postgresql")
    assert moved == stack.postgres_data_dir(None, default, as_root=True)
    assert stack.postgres_data_dir(None, default, as_root=False) == default
    assert (
        stack.postgres_data_dir(str(tmp_path / "mine"), default, as_root=True)
        == (tmp_path / "mine").resolve()
    )
    # Folders still to be created are made 0755: reachable.
    open_default = Path("/shinchoku-not-created") / "stack" / "postgres" / "data"
    assert stack.postgres_data_dir(None, open_default, as_root=True) == open_default

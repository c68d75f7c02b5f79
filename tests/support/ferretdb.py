"""A private FerretDB process for tests that must stop and restart the database.

It runs the binary `make test` built (deploy/local/stack.py) on a free port, on the stack's
backend: with PostgreSQL (``SHINCHOKU_TEST_POSTGRES``, set by `make test` when FerretDB stores in
PostgreSQL) it stores in a PostgreSQL database of its own on the stack's server, created at the
first start and dropped by `remove`; otherwise in its own SQLite folder. Stopping it never
disturbs the shared FerretDB other tests use (an outage of FerretDB, not of PostgreSQL).
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from harness.stack import free_port

ROOT = Path(__file__).resolve().parents[2]


def ferretdb_binary() -> Path:
    cache = Path(os.environ.get("SHINCHOKU_CACHE_DIR", ROOT / ".cache"))
    return cache / "stack" / "ferretdb" / "bin" / "shinchoku-ferretdb"


def psql_binary() -> str:
    """Debian's psql (any version talks to the stack's server)."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/psql"))
    on_path = shutil.which("psql")
    if on_path:
        return on_path
    if found:
        return str(found[-1])
    raise RuntimeError("psql not found: `make test` installs Debian's postgresql package")


def psql(server_url: str, statement: str) -> None:
    """One statement on the server's maintenance database, as the stack's superuser."""
    server = urlsplit(server_url)
    subprocess.run(
        [
            psql_binary(),
            "-X",
            "-q",
            "-v",
            "ON_ERROR_STOP=1",
            "-h",
            server.hostname or "127.0.0.1",
            "-p",
            str(server.port or 5432),
            "-U",
            server.username or "postgres",
            "-d",
            "postgres",
            "-c",
            statement,
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )


@dataclass
class PrivateFerretDB:
    data_dir: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    # The stack's PostgreSQL server (postgres://user@host:port), when FerretDB stores there.
    postgres: str | None = field(default_factory=lambda: os.environ.get("SHINCHOKU_TEST_POSTGRES"))
    pg_database: str = field(default_factory=lambda: f"private_{secrets.token_hex(4)}")
    _created: bool = False

    @property
    def url(self) -> str:
        return f"mongodb://127.0.0.1:{self.port}"

    def storage_arguments(self) -> list[str]:
        if self.postgres is None:
            return ["-handler=sqlite", f"-sqlite-url=file:{self.data_dir}/"]
        if not self._created:
            psql(self.postgres, f'CREATE DATABASE "{self.pg_database}"')
            self._created = True
        server = self.postgres.rstrip("/")
        return ["-handler=postgresql", f"-postgresql-url={server}/{self.pg_database}"]

    def start(self, timeout_s: float = 30.0) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with (self.data_dir / "ferretdb.log").open("ab") as log:
            self.process = subprocess.Popen(
                [
                    str(ferretdb_binary()),
                    f"-listen-addr=127.0.0.1:{self.port}",
                    *self.storage_arguments(),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with socket.socket() as sock:
                sock.settimeout(0.5)
                if sock.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            if self.process.poll() is not None:
                raise RuntimeError(f"FerretDB exited with {self.process.returncode}")
            time.sleep(0.1)
        raise RuntimeError(f"FerretDB did not listen on {self.port} within {timeout_s}s")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=15)
        self.process = None

    def remove(self) -> None:
        """Stop, and drop its PostgreSQL database (its SQLite folder goes with tmp_path)."""
        self.stop()
        if self.postgres is not None and self._created:
            psql(self.postgres, f'DROP DATABASE IF EXISTS "{self.pg_database}" WITH (FORCE)')
            self._created = False

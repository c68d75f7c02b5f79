"""A private FerretDB process for tests that must stop and restart the database.

It runs the binary `make test` built (deploy/local/stack.py) on a free port with its own data
directory, so stopping it never disturbs the shared stack other tests use.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.stack import free_port

ROOT = Path(__file__).resolve().parents[2]


def ferretdb_binary() -> Path:
    cache = Path(os.environ.get("SHINCHOKU_CACHE_DIR", ROOT / ".cache"))
    return cache / "stack" / "ferretdb" / "bin" / "shinchoku-ferretdb"


@dataclass
class PrivateFerretDB:
    data_dir: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"mongodb://127.0.0.1:{self.port}"

    def start(self, timeout_s: float = 30.0) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with (self.data_dir / "ferretdb.log").open("ab") as log:
            self.process = subprocess.Popen(
                [
                    str(ferretdb_binary()),
                    f"-listen-addr=127.0.0.1:{self.port}",
                    "-handler=sqlite",
                    f"-sqlite-url=file:{self.data_dir}/",
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

"""A private, single-node Kafka broker for tests that must stop a broker: never the shared one.

It runs from the same jars and server template as the local stack (deploy/local/stack.py), on free
ports, with its own data directory, PLAINTEXT without ACLs (`plaintext`), so a test can pause it
(SIGSTOP), kill it (SIGKILL) or restart it on the same data while everyone else's tests keep using
the shared broker.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import importlib.util
import os
import signal
import string
import subprocess
import sys
import time
import uuid
from pathlib import Path
from types import ModuleType

from harness.stack import free_port

ROOT = Path(__file__).resolve().parents[2]


@functools.cache
def local_stack_module() -> ModuleType:
    """deploy/local/stack.py (standard library only; importing it starts nothing)."""
    name = "shinchoku_local_stack"
    spec = importlib.util.spec_from_file_location(name, ROOT / "deploy" / "local" / "stack.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the file executes
    spec.loader.exec_module(module)
    return module


def _cluster_id() -> str:
    """What `kafka-storage random-uuid` prints: a UUID, URL-safe base64 without padding, never
    starting with "-" (Kafka's Uuid.randomUuid redraws those: the storage tool's argument parser
    would read one as an option, and `format -t -Xyz…` fails)."""
    while True:
        candidate = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        if not candidate.startswith("-"):
            return candidate


# The stack's authentication and authorisation settings (SASL/SCRAM, ACLs).
_SECURITY_KEYS = (
    "listeners",
    "advertised.listeners",
    "listener.security.protocol.map",
    "inter.broker.listener.name",
    "authorizer.class.name",
    "allow.everyone.if.no.acl.found",
    "super.users",
)
_SECURITY_PREFIXES = ("sasl.", "listener.name.")


def plaintext(properties: str, port: int, controller_port: int) -> str:
    """The stack's broker configuration without its SASL listeners and ACLs: a throw-away broker
    is stopped and restarted by tests of outages, not of who may write (test_kafka_acls.py)."""
    kept = [
        line
        for line in properties.splitlines()
        if line.split("=", 1)[0] not in _SECURITY_KEYS and not line.startswith(_SECURITY_PREFIXES)
    ]
    kept += [
        f"listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}",
        f"advertised.listeners=PLAINTEXT://127.0.0.1:{port}",
        "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
        "inter.broker.listener.name=PLAINTEXT",
    ]
    return "\n".join(kept) + "\n"


class PrivateKafkaBroker:
    """One KRaft broker+controller on free ports with data under `directory`."""

    def __init__(self, directory: Path, heap: str = "256m") -> None:
        self.directory = directory
        self.port = free_port()
        self.controller_port = free_port()
        self.heap = heap
        self.data = directory / "data"
        self.config = directory / "server.properties"
        self.log = directory / "kafka.log"
        self.process: subprocess.Popen[bytes] | None = None
        self._stack = local_stack_module()

    @property
    def bootstrap_servers(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _format(self) -> None:
        template = (ROOT / "deploy" / "local" / "kafka" / "server.properties.template").read_text()
        rendered = string.Template(template).substitute(
            KAFKA_PORT=self.port,
            CONTROLLER_PORT=self.controller_port,
            DATA_DIR=self.data,
            ADMIN_PASSWORD="unused",
            CONTROLLER_PASSWORD="unused",
        )
        rendered = plaintext(rendered, self.port, self.controller_port)
        # Fast shutdown and start-up for a throw-away broker.
        rendered += "\ncontrolled.shutdown.enable=false\nlog.flush.scheduler.interval.ms=1000\n"
        self.config.write_text(rendered)
        if (self.data / "meta.properties").exists():
            return
        self.data.mkdir(parents=True, exist_ok=True)
        command = self._stack.kafka_java(
            "kafka.tools.StorageTool",
            "format",
            "-t",
            _cluster_id(),
            "-c",
            str(self.config),
            "--ignore-formatted",
            heap="128m",
        )
        formatted = subprocess.run(command, capture_output=True, text=True, timeout=120)
        if formatted.returncode != 0:
            raise RuntimeError(f"kafka storage format failed: {formatted.stderr[-2000:]}")

    def start(self, timeout_s: float = 120.0) -> None:
        """Start (formatting the data directory the first time) and wait until it serves."""
        assert self.process is None or self.process.poll() is not None, "already running"
        self.directory.mkdir(parents=True, exist_ok=True)
        self._format()
        started_at = self.log.stat().st_size if self.log.exists() else 0
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                self._stack.kafka_java("kafka.Kafka", str(self.config), heap=self.heap),
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"private Kafka exited:\n{self.tail()}")
            answering = self._stack.kafka_api_versions_ok(self.port)
            if answering and "Kafka Server started" in self._log_since(started_at):
                return
            time.sleep(0.2)
        raise RuntimeError(f"private Kafka not ready after {timeout_s}s:\n{self.tail()}")

    def pause(self) -> None:
        """SIGSTOP: the broker hangs (connections stay open, nothing is answered)."""
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGSTOP)

    def resume(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGCONT)

    def kill(self) -> None:
        """SIGKILL: the broker dies at once (what was acknowledged is in the page cache)."""
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGCONT)
            self.process.kill()
            self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.process.pid, signal.SIGCONT)
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=30)

    def _log_since(self, offset: int) -> str:
        with self.log.open("rb") as f:
            f.seek(offset)
            return f.read().decode(errors="replace")

    def tail(self, lines: int = 30) -> str:
        if not self.log.exists():
            return ""
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

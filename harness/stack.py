"""Where the real local stack (Kafka + FerretDB + Prometheus, deploy/local/stack.py) listens, and
how to reach it, for the tests and the benchmarks that run against it.

The addresses come from SHINCHOKU_TEST_KAFKA / _MONGO / _PROMETHEUS (`make test` and `make bench`
set them). The stack's Kafka authenticates every client (SASL/SCRAM) and authorises it by ACL. Its
passwords are in the JSON file named by SHINCHOKU_TEST_KAFKA_CREDENTIALS (deploy/local/stack.py
writes it into the cache folder). Callers act as the `admin` super user; the services they start
run as their own principals (harness/services.py).
"""

from __future__ import annotations

import json
import os
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from shared.settings import KafkaSettings

ROOT = Path(__file__).resolve().parents[1]
# Where a stack started from this checkout with the default cache keeps its Kafka passwords.
DEFAULT_CREDENTIALS = ROOT / ".cache" / "stack" / "kafka" / "credentials.json"


def _env(name: str, default: str) -> str:
    return os.environ.get(name, default)


def _stack_kafka() -> str:
    return _env("SHINCHOKU_TEST_KAFKA", "127.0.0.1:9092")


@dataclass(frozen=True)
class StackEndpoints:
    kafka: str = field(default_factory=_stack_kafka)
    mongo: str = field(
        default_factory=lambda: _env("SHINCHOKU_TEST_MONGO", "mongodb://127.0.0.1:27017")
    )
    prometheus: str = field(
        default_factory=lambda: _env("SHINCHOKU_TEST_PROMETHEUS", "http://127.0.0.1:9090")
    )
    kafka_credentials: dict[str, Any] = field(
        default_factory=lambda: _kafka_credentials(), compare=False, repr=False
    )

    def kafka_as(self, user: str, *, client_id: str = "shinchoku-test") -> KafkaSettings:
        """Settings for the stack's Kafka as `user` (admin, ingest, kpi, alerts, ministry-test);
        PLAINTEXT without credentials when the stack gave none, or for a private broker a test
        started (tests/support/kafka_broker.py)."""
        users = self.kafka_credentials.get("users", {}) if self.kafka == _stack_kafka() else {}
        if not users:
            return KafkaSettings(bootstrap_servers=self.kafka, client_id=client_id)
        return KafkaSettings(
            bootstrap_servers=self.kafka,
            client_id=client_id,
            security_protocol=self.kafka_credentials["security_protocol"],
            sasl_mechanism=self.kafka_credentials["sasl_mechanism"],
            username=user,
            password=SecretStr(users[user]),
        )

    def kafka_env(self, prefix: str, user: str) -> dict[str, str]:
        """`kafka_as(user)` as a service's environment variables (``<prefix>KAFKA__...``)."""
        settings = self.kafka_as(user)
        env = {f"{prefix}KAFKA__BOOTSTRAP_SERVERS": settings.bootstrap_servers}
        if settings.password is not None:
            env[f"{prefix}KAFKA__SECURITY_PROTOCOL"] = settings.security_protocol
            env[f"{prefix}KAFKA__SASL_MECHANISM"] = settings.sasl_mechanism
            env[f"{prefix}KAFKA__USERNAME"] = user
            env[f"{prefix}KAFKA__PASSWORD"] = settings.password.get_secret_value()
        return env


def _kafka_credentials() -> dict[str, Any]:
    named = os.environ.get("SHINCHOKU_TEST_KAFKA_CREDENTIALS")
    path = Path(named) if named else DEFAULT_CREDENTIALS
    if not path.exists():
        if named:
            raise FileNotFoundError(f"SHINCHOKU_TEST_KAFKA_CREDENTIALS: no file {path}")
        return {}
    credentials: dict[str, Any] = json.loads(path.read_text())
    return credentials


def kafka_settings(endpoints: StackEndpoints) -> KafkaSettings:
    return endpoints.kafka_as("admin")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port

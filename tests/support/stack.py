"""Test access to the real local stack (Kafka + FerretDB) started by `make test`.

Nothing here fakes Kafka or MongoDB. Each test session uses its own topics and database
(random suffix), so tests never collide with each other or with a `make run` instance.
"""

from __future__ import annotations

import os
import secrets
import socket
from dataclasses import dataclass, field

from shared.settings import KafkaSettings, MongoSettings, TopicSettings


def _env(name: str, default: str) -> str:
    return os.environ.get(name, default)


@dataclass(frozen=True)
class StackEndpoints:
    kafka: str = field(default_factory=lambda: _env("SHINCHOKU_TEST_KAFKA", "127.0.0.1:9092"))
    mongo: str = field(
        default_factory=lambda: _env("SHINCHOKU_TEST_MONGO", "mongodb://127.0.0.1:27017")
    )
    prometheus: str = field(
        default_factory=lambda: _env("SHINCHOKU_TEST_PROMETHEUS", "http://127.0.0.1:9090")
    )


def random_suffix() -> str:
    return secrets.token_hex(4)


def isolated_topics(run_id: str, partitions: int = 3) -> TopicSettings:
    return TopicSettings(
        events=f"test.{run_id}.events.v1",
        status=f"test.{run_id}.status.v1",
        dead_letter=f"test.{run_id}.events.dlq.v1",
        partitions=partitions,
    )


def kafka_settings(endpoints: StackEndpoints) -> KafkaSettings:
    return KafkaSettings(bootstrap_servers=endpoints.kafka, client_id="shinchoku-test")


def mongo_settings(endpoints: StackEndpoints, run_id: str) -> MongoSettings:
    return MongoSettings(url=endpoints.mongo, database=f"test_{run_id}")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port

"""Test access to the real local stack started by `make test` (harness/stack.py says where it
listens and how to log in).

Nothing here fakes Kafka or MongoDB. Each test session uses its own topics and database
(random suffix), so tests never collide with each other or with a `make run` instance.
"""

from __future__ import annotations

import secrets
from typing import Any

# Re-exported for test modules other #15 branches are editing (test_ingest_ownership.py,
# test_ingest_restart.py); everything else imports it from harness.stack.
from harness.stack import StackEndpoints as StackEndpoints
from shared.kafka import client_options
from shared.settings import KafkaSettings, MongoSettings, TopicSettings


def kafka_client_options(target: KafkaSettings | str) -> dict[str, Any]:
    """Arguments for a bare aiokafka client in a test: from settings as given, or, for a
    bootstrap address, the admin's credentials when it is the stack's broker (the private
    brokers some tests start are PLAINTEXT)."""
    if isinstance(target, KafkaSettings):
        return client_options(target)
    return client_options(StackEndpoints(kafka=target).kafka_as("admin"))


def random_suffix() -> str:
    return secrets.token_hex(4)


def isolated_topics(run_id: str, partitions: int = 3) -> TopicSettings:
    return TopicSettings(
        events=f"test.{run_id}.events.v1",
        status=f"test.{run_id}.status.v1",
        dead_letter=f"test.{run_id}.events.dlq.v1",
        partitions=partitions,
    )


def mongo_settings(endpoints: StackEndpoints, run_id: str) -> MongoSettings:
    return MongoSettings(url=endpoints.mongo, database=f"test_{run_id}")

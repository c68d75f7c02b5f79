"""The throw-away brokers' cluster ids are ones Kafka's storage tool accepts."""

from __future__ import annotations

import re

from tests.support.kafka_broker import _cluster_id


def test_cluster_ids_look_like_kafka_uuids_and_never_start_with_a_dash() -> None:
    """A leading "-" makes `kafka-storage format -t <id>` read the id as an option (a CI run
    failed that way); Kafka's own Uuid.randomUuid redraws such ids, and so do we."""
    ids = [_cluster_id() for _ in range(5000)]
    assert all(re.fullmatch(r"[A-Za-z0-9_-]{22}", i) for i in ids)
    assert not [i for i in ids if i.startswith("-")]
    assert len(set(ids)) == len(ids)

"""The throw-away brokers' cluster ids are ones Kafka's storage tool accepts."""

from __future__ import annotations

import re

from tests.support.kafka_broker import ROOT, _cluster_id, plaintext


def test_cluster_ids_look_like_kafka_uuids_and_never_start_with_a_dash() -> None:
    """A leading "-" makes `kafka-storage format -t <id>` read the id as an option (a CI run
    failed that way); Kafka's own Uuid.randomUuid redraws such ids, and so do we."""
    ids = [_cluster_id() for _ in range(5000)]
    assert all(re.fullmatch(r"[A-Za-z0-9_-]{22}", i) for i in ids)
    assert not [i for i in ids if i.startswith("-")]
    assert len(set(ids)) == len(ids)


def test_the_private_broker_is_plaintext_without_acls() -> None:
    """The stack's SASL listeners, JAAS entries and authorizer are replaced, the rest kept."""
    template = (ROOT / "deploy" / "local" / "kafka" / "server.properties.template").read_text()
    assert "StandardAuthorizer" in template  # so the filtering below is not over nothing
    rendered = plaintext(template, 1111, 2222)
    keys = [line.split("=", 1)[0] for line in rendered.splitlines() if "=" in line]
    assert len(keys) == len(set(keys))
    assert "listeners=PLAINTEXT://127.0.0.1:1111,CONTROLLER://127.0.0.1:2222" in rendered
    assert "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT" in rendered
    settings = "\n".join(line for line in rendered.splitlines() if not line.startswith("#"))
    for gone in ("SASL", "sasl.", "jaas", "authorizer", "super.users", "PASSWORD"):
        assert gone not in settings, gone
    assert "auto.create.topics.enable=false" in rendered

"""Poison records written straight to Kafka, in front of valid ones, reach the real kpi and alerts
services (processes): each poison record goes to the dead-letter topic with its reason, and the
valid records behind it on the same partition are processed."""

from __future__ import annotations

import json
import secrets
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest
from aiokafka.record.default_records import DefaultRecordBatchBuilder
from standardwebhooks.webhooks import Webhook

from harness.services import RunningService, running_services, service_environment
from harness.stack import StackEndpoints
from harness.webhooks import webhook_receiver
from shared.events.contracts import Status
from shared.events.kafka_binding import MAX_RECORD_BYTES, STRUCTURED_CONTENT_TYPE
from shared.kafka import create_producer, ensure_topics
from shared.mongo import MongoClient
from shared.settings import KafkaSettings, MongoSettings, TopicSettings
from tests.support.faults import eventually, read_dead_letters, status_change_record
from tests.support.ingest import load_real_catalogue
from tests.support.stack import isolated_topics, random_suffix

pytestmark = pytest.mark.e2e

KPI_ID = "kpi.5g-base-stations"  # a real catalogue KPI, owned by mic
STRUCTURED = [("content-type", STRUCTURED_CONTENT_TYPE.encode())]
# Bigger than the consumers' limit, within the broker's message.max.bytes (2 MiB).
HUGE_BYTES = MAX_RECORD_BYTES + 512 * 1024
BROKER_LIMIT = 2 * 1024 * 1024  # deploy/local/kafka: message.max.bytes; the producers' limit too


@dataclass(frozen=True)
class Poison:
    name: str
    value: bytes | None
    headers: list[tuple[str, bytes]]
    reason: str


def observation(event_id: str, kpi_id: str = KPI_ID, **overrides: Any) -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "id": event_id,
        "source": "/ministries/mic",
        "type": "shinchoku.kpi.observed.v1",
        "subject": kpi_id,
        "time": datetime.now(UTC).isoformat(),
        "partitionkey": kpi_id,
        "data": {
            "kpi_id": kpi_id,
            "value": 250_000.0,
            "as_of": (date.today() - timedelta(days=3)).isoformat(),
        },
        **overrides,
    }


def dumps(document: dict[str, Any]) -> bytes:
    return json.dumps(document).encode()


def at_the_limit(key: bytes, headers: list[tuple[str, bytes]]) -> bytes:
    """A value that makes the record exactly as large as a producer may send and the broker
    accepts: its dead-letter copy, with the dlq_* headers added, is over the limit."""
    value: bytes = b"x" * (
        BROKER_LIMIT - DefaultRecordBatchBuilder.estimate_size_in_bytes(key, b"", headers)
    )
    while DefaultRecordBatchBuilder.estimate_size_in_bytes(key, value, headers) > BROKER_LIMIT:
        value = value[:-1]  # the value's length prefix grows with it
    return value


def poison_set(valid: dict[str, Any], topic_types: str, key: bytes) -> list[Poison]:
    """Every way a record can be poison, built from a valid event of the topic's own type."""
    huge = {**valid, "id": secrets.token_hex(8), "bulk": "x" * HUGE_BYTES}
    missing_attributes = {k: v for k, v in valid.items() if k not in {"id", "source"}}
    wrong_schema = {**valid, "id": secrets.token_hex(8), "data": {"kpi_id": valid["subject"]}}
    binary_headers = [
        ("content-type", b"application/json"),
        ("ce_specversion", b"1.0"),
        ("ce_type", valid["type"].encode()),
        ("ce_subject", valid["subject"].encode()),
        ("ce_time", valid["time"].encode()),
    ]
    return [
        Poison("invalid JSON", b'{"specversion": "1.0", "id": ', STRUCTURED, "invalid_json"),
        Poison("not UTF-8", b'{"id": "\xc3\x28"}', STRUCTURED, "invalid_json"),
        Poison("wrong schema", dumps(wrong_schema), STRUCTURED, "schema_violation"),
        Poison("huge payload", dumps(huge), STRUCTURED, "oversized_record"),
        Poison(
            "huge payload at the broker's limit",
            at_the_limit(key, STRUCTURED),
            STRUCTURED,
            "oversized_record",
        ),
        Poison(
            "unknown type",
            dumps({**valid, "id": secrets.token_hex(8), "type": "com.example.unknown.v1"}),
            STRUCTURED,
            "unknown_type",
        ),
        Poison(
            "the other topic's type",
            dumps({**valid, "id": secrets.token_hex(8), "type": topic_types}),
            STRUCTURED,
            "unknown_type",
        ),
        Poison("no id or source", dumps(missing_attributes), STRUCTURED, "schema_violation"),
        Poison(
            "binary mode without ce_id and ce_source",
            dumps(valid["data"]),
            binary_headers,
            "schema_violation",
        ),
        Poison("no CloudEvents attributes", dumps(valid["data"]), [], "not_a_cloudevent"),
        Poison("empty value", None, STRUCTURED, "empty_record"),
    ]


@pytest.fixture(scope="module")
async def setup(
    endpoints: StackEndpoints, kafka: KafkaSettings, mongo: MongoClient, mongo_config: MongoSettings
) -> AsyncIterator[tuple[TopicSettings, str]]:
    topics = isolated_topics(f"poison{random_suffix()}")
    await ensure_topics(kafka, topics)
    database = f"{mongo_config.database}_poison"
    await load_real_catalogue(mongo, database)
    yield topics, database
    await mongo.drop_database(database)


@pytest.fixture(scope="module")
def services(
    setup: tuple[TopicSettings, str],
    endpoints: StackEndpoints,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[dict[str, RunningService]]:
    topics, database = setup
    envs = {
        name: service_environment(
            name,
            endpoints=endpoints,
            topics=topics,
            database=database,
            admin_token="poison-test",
            extra={"SHINCHOKU_ALERTS_GROUPING_WINDOW_S": "0"},
        )
        for name in ("kpi", "alerts")
    }
    with running_services(envs, tmp_path_factory.mktemp("poison-logs")) as started:
        yield started


async def test_poison_records_are_dead_lettered_with_their_reason_and_valid_ones_processed(
    setup: tuple[TopicSettings, str],
    services: dict[str, RunningService],
    kafka: KafkaSettings,
) -> None:
    """Invalid JSON, non-UTF-8 bytes, a schema violation, a payload over the consumer's limit,
    unknown types, missing CloudEvents attributes (structured and binary), a bare JSON object
    and an empty value, put in front of valid records on the same partition of the events topic
    (kpi) and the status topic (alerts): each poison record lands once on the dead-letter
    topic, from the service that read it, with its reason and its original bytes; an event of
    a KPI missing from the catalogue is dead-lettered by the kpi handler; the valid records
    behind them are processed (the observation is stored, the status change is delivered as a
    verified webhook), and both services stay ready."""
    topics, _ = setup
    kpi, alerts = services["kpi"], services["alerts"]
    alerted_kpi = f"kpi.poison-{secrets.token_hex(3)}"
    valid_observation = observation(secrets.token_hex(8))
    unknown_subject = observation(secrets.token_hex(8), kpi_id="kpi.not-in-the-catalogue")
    status_record = status_change_record(
        alerted_kpi, seq=1, status=Status.OFF_TRACK, previous=Status.ON_TRACK
    )
    valid_status = json.loads(status_record.value)

    async with webhook_receiver() as receiver, httpx.AsyncClient(timeout=20) as http:
        created = await http.post(
            f"{alerts.url}/v1/subscriptions",
            headers={"Authorization": "Bearer poison-test"},
            json={"url": receiver.url, "filter": {"kpis": [alerted_kpi]}},
        )
        assert created.status_code == 201, created.text
        secret = created.json()["secret"]

        producer = create_producer(kafka, client_suffix="poison-test")
        await producer.start()
        expected: dict[tuple[str, int, int], tuple[str, str, str, bytes | None]] = {}
        try:
            for topic, key, valid, service, other_type in (
                (
                    topics.events,
                    KPI_ID.encode(),
                    valid_observation,
                    "kpi",
                    "shinchoku.kpi.status_changed.v1",
                ),
                (
                    topics.status,
                    alerted_kpi.encode(),
                    valid_status,
                    "alerts",
                    "shinchoku.kpi.observed.v1",
                ),
            ):
                for poison in poison_set(valid, other_type, key):
                    sent = await producer.send_and_wait(
                        topic, key=key, value=poison.value, headers=poison.headers
                    )
                    expected[(topic, sent.partition, sent.offset)] = (
                        service,
                        poison.reason,
                        poison.name,
                        poison.value,
                    )
            rejected = await producer.send_and_wait(
                topics.events,
                key=KPI_ID.encode(),
                value=dumps(unknown_subject),
                headers=STRUCTURED,
            )
            expected[(topics.events, rejected.partition, rejected.offset)] = (
                "kpi",
                "unknown_subject",
                "a KPI missing from the catalogue",
                dumps(unknown_subject),
            )
            # The valid records go last, on the partition the poison records went to.
            await producer.send_and_wait(
                topics.events,
                key=KPI_ID.encode(),
                value=dumps(valid_observation),
                headers=STRUCTURED,
            )
            await producer.send_and_wait(
                topics.status,
                key=status_record.key,
                value=status_record.value,
                headers=status_record.headers,
            )
        finally:
            await producer.stop()

        # The valid records behind the poison are processed.
        async def stored() -> bool:
            answer = await http.get(f"{kpi.url}/v1/kpis/{KPI_ID}")
            assert answer.status_code == 200, answer.text
            ids = [o["event_id"] for o in answer.json()["observations"]]
            return valid_observation["id"] in ids

        await eventually(stored, timeout_s=60, what="the valid observation stored by kpi")
        (webhook,) = await receiver.wait_for(1, timeout_s=60)
        delivered = Webhook(secret).verify(webhook.body, webhook.headers)
        assert delivered["data"]["kpi_id"] == alerted_kpi
        assert delivered["data"]["status_event_id"] == valid_status["id"]

        dead = await read_dead_letters(
            kafka.bootstrap_servers,
            topics.dead_letter,
            until=lambda seen: {d.source for d in seen} >= expected.keys(),
        )
        by_source: dict[tuple[str, int, int], list[Any]] = {}
        for record in dead:
            by_source.setdefault(record.source, []).append(record)
        assert by_source.keys() == expected.keys(), "only the poison records are dead-lettered"
        for source, (service, reason, name, value) in expected.items():
            (record,) = by_source[source]
            assert record.dlq["dlq_service"] == service, name
            assert record.dlq["dlq_reason"] == reason, (name, record.dlq)
            assert record.dlq["dlq_detail"], name
            assert datetime.fromisoformat(record.dlq["dlq_time"]).tzinfo is not None
            if "limit" in name:
                # Its copy would be over the limit: dead-lettered without its bytes, which
                # stay at the source offset the headers give.
                assert record.value is None, name
                assert record.dlq["dlq_omitted"] == str(len(value or b"")), name
            else:
                assert record.value == value, f"{name}: the original bytes are kept"
        huge = [r for r in dead if r.dlq["dlq_reason"] == "oversized_record"]
        assert len(huge) == 4
        assert sum(len(r.value or b"") > MAX_RECORD_BYTES for r in huge) == 2
        missing = [
            r.dlq["dlq_detail"]
            for s, (_, _, name, _) in expected.items()
            if name == "no id or source"
            for r in by_source[s]
        ]
        assert all("id" in detail and "source" in detail for detail in missing), missing

        for running in (kpi, alerts):
            ready = await http.get(f"{running.url}/readyz")
            assert ready.status_code == 200, (running.name, ready.text)


async def test_records_that_bypass_ingest_are_checked_again_by_kpi(
    setup: tuple[TopicSettings, str],
    services: dict[str, RunningService],
    kafka: KafkaSettings,
) -> None:
    """Records produced straight to the events topic get ingest's checks in the kpi consumer
    (issue 12 item 4): another ministry's source, an unknown ministry, a source that is not a
    ministry, a negative count and an as_of in 2099 are dead-lettered with their reasons and
    not stored; a valid record behind them on the same partition is stored."""
    topics, _ = setup
    kpi = services["kpi"]
    cases = {
        "another ministry's source": (
            observation(secrets.token_hex(8), source="/ministries/mhlw"),
            "wrong_ministry",
        ),
        "an unknown ministry": (
            observation(secrets.token_hex(8), source="/ministries/nobody"),
            "wrong_ministry",
        ),
        "not a ministry source": (
            observation(secrets.token_hex(8), source="urn:attacker"),
            "schema_violation",
        ),
        "a negative count": (
            observation(
                secrets.token_hex(8),
                data={"kpi_id": KPI_ID, "value": -50.0, "as_of": date.today().isoformat()},
            ),
            "impossible_value",
        ),
        "an as_of in 2099": (
            observation(
                secrets.token_hex(8),
                data={"kpi_id": KPI_ID, "value": 1.0, "as_of": "2099-01-01"},
            ),
            "as_of_in_future",
        ),
    }
    valid = observation(secrets.token_hex(8))
    producer = create_producer(kafka, client_suffix="trust-test")
    await producer.start()
    expected: dict[tuple[str, int, int], tuple[str, str]] = {}
    try:
        for name, (document, reason) in cases.items():
            sent = await producer.send_and_wait(
                topics.events, key=KPI_ID.encode(), value=dumps(document), headers=STRUCTURED
            )
            expected[(topics.events, sent.partition, sent.offset)] = (name, reason)
        await producer.send_and_wait(
            topics.events, key=KPI_ID.encode(), value=dumps(valid), headers=STRUCTURED
        )
    finally:
        await producer.stop()

    async with httpx.AsyncClient(timeout=20) as http:

        async def stored_ids() -> list[str]:
            answer = await http.get(f"{kpi.url}/v1/kpis/{KPI_ID}")
            assert answer.status_code == 200, answer.text
            return [o["event_id"] for o in answer.json()["observations"]]

        async def valid_stored() -> bool:
            return valid["id"] in await stored_ids()

        await eventually(valid_stored, timeout_s=60, what="the valid observation stored by kpi")
        dead = await read_dead_letters(
            kafka.bootstrap_servers,
            topics.dead_letter,
            until=lambda seen: {d.source for d in seen} >= expected.keys(),
        )
        by_source = {record.source: record for record in dead if record.source in expected}
        assert by_source.keys() == expected.keys()
        for source, (name, reason) in expected.items():
            record = by_source[source]
            assert record.dlq["dlq_service"] == "kpi", name
            assert record.dlq["dlq_reason"] == reason, (name, record.dlq)
            assert record.dlq["dlq_detail"], name
        ids = await stored_ids()
        assert not {document["id"] for document, _ in cases.values()} & set(ids)

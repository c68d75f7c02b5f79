"""Ingest's strictness on the real Kafka and FerretDB (issue 12 items 2, 3, 7, 8, 9; issue 16
CloudEvents): every loose input is a specific problem+json, never a 500 or a silent coercion;
optional CloudEvents attributes and media-type parameters are accepted."""

from __future__ import annotations

import json
import secrets
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest

from shared.mongo import MongoClient
from shared.settings import KafkaSettings, TopicSettings
from tests.support.ingest import (
    ADMIN_TOKEN,
    BATCH,
    PERCENT_KPI,
    SMALL_LIMITS,
    STRUCTURED,
    InProcessIngest,
    bearer,
    body,
    create_key,
    kpi_event,
    records_with_ids,
)

pytestmark = pytest.mark.integration

INGEST_SETTINGS = SMALL_LIMITS
PROBLEMS = "/problems/"  # relative type URIs, resolved against the service (RFC 9457 3.1.1)
COUNT_KPI = "kpi.digital-promotion-volunteers"  # unit persons (a count), owned by digital and mic
DEEP = b"[" * 900 + b"]" * 900


@pytest.fixture(scope="module")
async def key(mongo: MongoClient, catalogue_database: str) -> str:
    return await create_key(mongo, catalogue_database, "digital")


async def post(
    ingest: InProcessIngest, key: str, content: bytes, headers: dict[str, str] = STRUCTURED
) -> httpx.Response:
    return await ingest.http.post("/v1/events", content=content, headers={**headers, **bearer(key)})


def problem(answer: httpx.Response, status: int, slug: str) -> dict[str, Any]:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    document: dict[str, Any] = answer.json()
    assert document["type"] == PROBLEMS + slug, document
    assert document["errors"], document
    return document


def without(event: dict[str, Any], *names: str) -> dict[str, Any]:
    return {k: v for k, v in event.items() if k not in names}


async def test_deep_nesting_is_a_400_problem_in_every_mode(
    ingest: InProcessIngest, key: str
) -> None:
    """A 2 KB body of 900 nested arrays is a 400 problem+json in structured, binary and batch
    mode, never `500 text/plain`."""
    structured = await post(ingest, key, DEEP)
    assert problem(structured, 400, "malformed-request")["code"] == "too_deep"
    binary_headers = {
        "content-type": "application/json",
        "ce-specversion": "1.0",
        "ce-id": "deep",
        "ce-source": "/ministries/digital",
        "ce-type": "shinchoku.kpi.observed.v1",
    }
    binary = await post(ingest, key, DEEP, binary_headers)
    assert problem(binary, 400, "malformed-request")["code"] == "too_deep"
    batch = await ingest.http.post(
        "/v1/events:batch", content=DEEP, headers={**BATCH, **bearer(key)}
    )
    assert problem(batch, 400, "malformed-request")["code"] == "too_deep"


async def test_duplicate_keys_are_refused(ingest: InProcessIngest, key: str) -> None:
    """Two values for `value` are refused, not resolved by keeping the last."""
    text = body(kpi_event(50.0)).replace(b'"value": 50.0', b'"value": 50.0, "value": 99.0')
    answer = await post(ingest, key, text)
    assert problem(answer, 400, "malformed-request")["code"] == "duplicate_key"


@pytest.mark.parametrize("value", [True, "12"], ids=["boolean", "string"])
async def test_a_value_must_be_a_json_number(ingest: InProcessIngest, key: str, value: Any) -> None:
    """`"value": true` is not 1.0 and `"value": "12"` is not 12.0."""
    event = kpi_event()
    event["data"]["value"] = value
    fields = [
        e["field"]
        for e in problem(await post(ingest, key, body(event)), 422, "invalid-event")["errors"]
    ]
    assert "data.value" in fields


async def test_an_object_extension_is_refused(ingest: InProcessIngest, key: str) -> None:
    """An extension attribute whose value is a JSON object is not a CloudEvents type."""
    answer = await post(ingest, key, body(kpi_event(myext={"nested": True})))
    problem(answer, 422, "invalid-event")


async def test_only_the_canonical_source_is_accepted_so_dedup_holds(
    ingest: InProcessIngest, key: str, kafka: KafkaSettings, topics: TopicSettings
) -> None:
    """The same id sent with four spellings of the source is accepted once: every spelling but
    `/ministries/digital` is a 422."""
    event = kpi_event()
    for source in ("/ministries/digital/", "/ministries//digital", "/ministries/digital//"):
        answer = await post(ingest, key, body({**event, "source": source}))
        fields = [e["field"] for e in problem(answer, 422, "invalid-event")["errors"]]
        assert "source" in fields
    assert (await post(ingest, key, body(event))).status_code == 202
    assert (await post(ingest, key, body(event))).status_code == 200
    found = await records_with_ids(kafka.bootstrap_servers, topics.events, [event["id"]])
    assert len(found[event["id"]]) == 1


async def test_time_is_rfc3339_and_not_far_ahead(ingest: InProcessIngest, key: str) -> None:
    """A Unix timestamp is not a time; a time past the 5-minute tolerance is refused (it would
    otherwise decide which correction wins); a clock 4 minutes ahead is fine."""
    unix = await post(ingest, key, body(kpi_event(time="1733300000")))
    assert "time" in [e["field"] for e in problem(unix, 422, "invalid-event")["errors"]]
    far = await post(ingest, key, body(kpi_event(time="9999-12-31T23:59:59Z")))
    assert problem(far, 422, "time-in-future")["code"] == "time_in_future"
    ahead = (datetime.now(UTC) + timedelta(minutes=4)).isoformat()
    assert (await post(ingest, key, body(kpi_event(time=ahead)))).status_code == 202


async def test_as_of_before_the_floor_is_refused(ingest: InProcessIngest, key: str) -> None:
    """as_of 0001-01-01 would become a KPI's plan start: refused with as-of-too-early."""
    answer = await post(ingest, key, body(kpi_event(as_of=date(1, 1, 1))))
    assert problem(answer, 422, "as-of-too-early")["code"] == "as_of_too_early"


@pytest.mark.parametrize(("value", "status"), [(-50.0, 422), (2.5, 422), (120_000.0, 202)])
async def test_a_count_is_a_non_negative_whole_number(
    ingest: InProcessIngest, key: str, value: float, status: int
) -> None:
    """−50 volunteers or 2.5 of them is impossible; 120,000 is fine."""
    answer = await post(ingest, key, body(kpi_event(value, kpi_id=COUNT_KPI)))
    assert answer.status_code == status, answer.text
    if status == 422:
        problem(answer, 422, "impossible-value")


async def test_time_and_subject_are_optional_in_single_and_batch_requests(
    ingest: InProcessIngest, key: str, kafka: KafkaSettings, topics: TopicSettings
) -> None:
    """Events without `time` and `subject` (OPTIONAL in CloudEvents 1.0) are accepted alone and
    in a batch, and reach Kafka keyed by the id in data, with the receive time as their time
    (so every reader, and a replay, sees the same one)."""
    before = datetime.now(UTC)
    single = without(kpi_event(), "time", "subject")
    assert (await post(ingest, key, body(single))).status_code == 202, "single"
    batched = [without(kpi_event(), "time", "subject") for _ in range(2)]
    answer = await ingest.http.post(
        "/v1/events:batch", content=body(batched), headers={**BATCH, **bearer(key)}
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["accepted"] == 2, answer.text
    ids = [single["id"], *(e["id"] for e in batched)]
    found = await records_with_ids(kafka.bootstrap_servers, topics.events, ids)
    for event_id in ids:
        (record,) = found[event_id]
        assert record.key == PERCENT_KPI.encode()
        assert "subject" not in record.event
        assert before <= datetime.fromisoformat(record.event["time"]) <= datetime.now(UTC)


async def test_json_with_a_charset_parameter_is_accepted_in_both_modes(
    ingest: InProcessIngest, key: str
) -> None:
    """`application/json; charset=utf-8` is JSON in structured mode as in binary mode."""
    charset = "application/json; charset=utf-8"
    structured = await post(ingest, key, body(kpi_event(datacontenttype=charset)))
    assert structured.status_code == 202, structured.text
    event = kpi_event()
    headers = {
        "content-type": charset,
        "ce-specversion": "1.0",
        "ce-id": event["id"],
        "ce-source": event["source"],
        "ce-type": event["type"],
    }
    binary = await post(ingest, key, json.dumps(event["data"]).encode(), headers)
    assert binary.status_code == 202, binary.text


async def test_a_revoked_key_with_a_wrong_secret_tells_nothing(
    ingest: InProcessIngest, mongo: MongoClient, catalogue_database: str
) -> None:
    """A revoked key id with a wrong secret answers exactly like an unknown key."""
    admin = {"authorization": f"Bearer {ADMIN_TOKEN}"}
    created = await ingest.http.post("/v1/admin/keys", json={"ministry": "digital"}, headers=admin)
    assert created.status_code == 201, created.text
    key_id = created.json()["key_id"]
    assert (await ingest.http.delete(f"/v1/admin/keys/{key_id}", headers=admin)).status_code == 200
    revoked_wrong = f"shk_{key_id}_{secrets.token_urlsafe(32)}"
    unknown = f"shk_{secrets.token_hex(6)}_{secrets.token_urlsafe(32)}"
    answers = [
        problem(await post(ingest, candidate, body(kpi_event())), 401, "unauthenticated")
        for candidate in (revoked_wrong, unknown, created.json()["key"])
    ]
    assert answers[0] == answers[1] == answers[2]
    assert answers[0]["code"] == "invalid_key"
    assert "revoked" not in answers[0]["detail"]


async def test_an_admin_route_refuses_before_reading_the_body(ingest: InProcessIngest) -> None:
    """A 10 MB unauthenticated body to an admin route is answered 401 without being read."""
    chunks_read = 0
    chunk = b"x" * (64 * 1024)

    async def ten_megabytes() -> AsyncIterator[bytes]:
        nonlocal chunks_read
        for _ in range(160):
            chunks_read += 1
            yield chunk

    answer = await ingest.http.post(
        "/v1/admin/keys",
        content=ten_megabytes(),
        headers={"content-type": "application/json", "authorization": "Bearer wrong"},
    )
    assert answer.status_code == 401, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert answer.json()["type"] == PROBLEMS + "unauthenticated"
    assert chunks_read <= 1, f"{chunks_read} chunks of the body were read before the 401"

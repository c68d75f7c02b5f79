"""The ingest API on the real Kafka and FerretDB: every answer of the contract (issue 4)."""

from __future__ import annotations

import asyncio
import re
import secrets
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest

from services.ingest.adapters.receipts import CLAIMS, RELEASED_CLAIMS, claim_id
from services.ingest.domain.receipts import new_batch_id
from shared.mongo import MongoClient
from shared.settings import KafkaSettings, MongoSettings, TopicSettings
from tests.support.ingest import (
    ADMIN_TOKEN,
    BATCH,
    MEASURE,
    MILESTONE,
    PERCENT_KPI,
    SMALL_LIMITS,
    STRUCTURED,
    InProcessIngest,
    bearer,
    body,
    create_key,
    ingest_in_process,
    ingest_settings,
    kpi_event,
    measure_event,
    milestone_event,
    records_with_ids,
)

pytestmark = pytest.mark.integration

INGEST_SETTINGS = SMALL_LIMITS
PROBLEMS = "/problems/"


@pytest.fixture(scope="module")
async def key(mongo: MongoClient, catalogue_database: str) -> str:
    """An API key of the Digital Agency, which the test entries belong to."""
    return await create_key(mongo, catalogue_database, "digital")


async def post_event(
    ingest: InProcessIngest, key: str, event: dict[str, Any] | list[Any] | bytes
) -> httpx.Response:
    content = event if isinstance(event, bytes) else body(event)
    return await ingest.http.post(
        "/v1/events", content=content, headers={**STRUCTURED, **bearer(key)}
    )


def assert_problem(response: httpx.Response, status: int, slug: str, field: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    problem: dict[str, Any] = response.json()
    assert problem["type"] == PROBLEMS + slug
    assert problem["status"] == status
    assert problem["detail"]
    assert field in [e["field"] for e in problem["errors"]], problem
    assert all(e["reason"] for e in problem["errors"])
    return problem


async def test_structured_event_is_acknowledged_after_kafka_has_it_in_structured_mode(
    ingest: InProcessIngest, key: str, kafka: KafkaSettings, topics: TopicSettings
) -> None:
    """A valid structured-mode event answers 202 and is on the topic in the CloudEvents Kafka
    binding's structured mode, keyed by its KPI id."""
    event = kpi_event(96.6)
    answer = await post_event(ingest, key, event)
    assert answer.status_code == 202, answer.text
    assert answer.json() == {
        "id": event["id"],
        "source": "/ministries/digital",
        "status": "accepted",
        "duplicate": False,
    }
    found = await records_with_ids(kafka.bootstrap_servers, topics.events, [event["id"]])
    (record,) = found[event["id"]]
    assert record.key == PERCENT_KPI.encode()
    assert record.headers["content-type"] == b"application/cloudevents+json; charset=UTF-8"
    assert record.event["partitionkey"] == PERCENT_KPI
    assert record.event["data"] == event["data"]
    assert record.event["source"] == event["source"]


async def test_binary_mode_event_is_accepted_with_percent_decoded_headers(
    ingest: InProcessIngest, key: str, kafka: KafkaSettings, topics: TopicSettings
) -> None:
    """Binary mode (ce-* headers, data as the body) is accepted; header values are
    percent-decoded as the CloudEvents HTTP binding requires."""
    event = kpi_event(95.1)
    event_id = f"bin {secrets.token_hex(4)}"  # a space travels as %20
    headers = {
        **bearer(key),
        "content-type": "application/json",
        "ce-specversion": "1.0",
        "ce-id": event_id.replace(" ", "%20"),
        "ce-source": event["source"],
        "ce-type": event["type"],
        "ce-subject": event["subject"],
        "ce-time": event["time"],
    }
    answer = await ingest.http.post("/v1/events", content=body(event["data"]), headers=headers)
    assert answer.status_code == 202, answer.text
    assert answer.json()["id"] == event_id
    found = await records_with_ids(kafka.bootstrap_servers, topics.events, [event_id])
    assert found[event_id][0].event["data"]["value"] == 95.1


async def test_milestone_and_measure_events_are_accepted(ingest: InProcessIngest, key: str) -> None:
    """Milestone reports and measure assessments on entries of the key's ministry answer 202."""
    for event in (milestone_event(), measure_event()):
        answer = await post_event(ingest, key, event)
        assert answer.status_code == 202, answer.text


async def test_a_duplicate_answers_200_and_is_not_published_again(
    ingest: InProcessIngest, key: str, kafka: KafkaSettings, topics: TopicSettings
) -> None:
    """The same source + id sent twice: 202 then 200 with duplicate true, one record on Kafka."""
    event = kpi_event(97.0)
    first = await post_event(ingest, key, event)
    again = await post_event(ingest, key, {**event, "time": datetime.now(UTC).isoformat()})
    assert first.status_code == 202
    assert again.status_code == 200, again.text
    assert again.json()["duplicate"] is True
    assert again.json()["status"] == "duplicate"
    found = await records_with_ids(kafka.bootstrap_servers, topics.events, [event["id"]])
    assert len(found[event["id"]]) == 1


@pytest.mark.parametrize(
    ("event", "status", "slug", "field"),
    [
        pytest.param(
            kpi_event(type="shinchoku.kpi.guessed.v1"), 422, "unknown-event-type", "type", id="type"
        ),
        pytest.param(
            kpi_event(kpi_id="kpi.no-such-kpi"),
            422,
            "not-in-catalogue",
            "data.kpi_id",
            id="unknown-kpi",
        ),
        pytest.param(kpi_event(130.0), 422, "impossible-value", "data.value", id="percent-130"),
        pytest.param(kpi_event(-1.0), 422, "impossible-value", "data.value", id="negative"),
        pytest.param(
            kpi_event(as_of=date.today() + timedelta(days=30)),
            422,
            "as-of-in-future",
            "data.as_of",
            id="future",
        ),
        pytest.param(
            kpi_event(kpi_id=MILESTONE), 422, "wrong-kind", "data.kpi_id", id="milestone-as-kpi"
        ),
        pytest.param(kpi_event(subject=MEASURE), 422, "inconsistent-event", "subject", id="subj"),
        pytest.param(
            kpi_event(partitionkey="elsewhere"),
            422,
            "inconsistent-event",
            "partitionkey",
            id="partitionkey",
        ),
        pytest.param(
            {
                **kpi_event(),
                "data": {"kpi_id": PERCENT_KPI, "value": "high", "as_of": "2024-01-01"},
            },
            422,
            "invalid-event",
            "data.value",
            id="schema",
        ),
        pytest.param(kpi_event(specversion="0.3"), 422, "invalid-event", "specversion", id="0.3"),
        pytest.param(
            kpi_event(ministry="mic"), 403, "source-not-allowed", "source", id="other-source"
        ),
        pytest.param(b"{not json", 400, "malformed-request", "(body)", id="malformed"),
    ],
)
async def test_each_refusal_is_a_problem_naming_the_field(
    ingest: InProcessIngest, key: str, event: Any, status: int, slug: str, field: str
) -> None:
    """Every refusal is application/problem+json with its own type, the field and the reason."""
    answer = await post_event(ingest, key, event)
    assert_problem(answer, status, slug, field)


async def test_a_ministry_not_responsible_for_the_kpi_is_forbidden(
    ingest: InProcessIngest, mongo: MongoClient, catalogue_database: str
) -> None:
    """A ministry reporting (as itself) on a KPI the catalogue gives to others gets 403 naming
    who may report it."""
    mhlw_key = await create_key(mongo, catalogue_database, "mhlw")
    answer = await post_event(ingest, mhlw_key, kpi_event(ministry="mhlw"))
    problem = assert_problem(answer, 403, "wrong-ministry", "source")
    assert problem["code"] == "wrong_ministry"
    assert "it may be reported by: digital, mic" in problem["detail"]
    measure = await post_event(ingest, mhlw_key, measure_event(ministry="mhlw"))
    assert_problem(measure, 403, "wrong-ministry", "source")


async def test_missing_or_bad_keys_answer_401(
    ingest: InProcessIngest, key: str, mongo: MongoClient, catalogue_database: str
) -> None:
    """No key, a malformed key, an unknown key, a wrong secret and another scheme: 401."""
    key_id = key.split("_")[1]
    wrong_secret = f"shk_{key_id}_{secrets.token_urlsafe(32)}"
    unknown = f"shk_{secrets.token_hex(6)}_{secrets.token_urlsafe(32)}"
    cases: list[dict[str, str]] = [
        {},
        bearer("not-a-key"),
        bearer(unknown),
        bearer(wrong_secret),
        {"authorization": f"Basic {key}"},
    ]
    for auth in cases:
        answer = await ingest.http.post(
            "/v1/events", content=body(kpi_event()), headers={**STRUCTURED, **auth}
        )
        assert_problem(answer, 401, "unauthenticated", "Authorization")
        assert answer.headers["www-authenticate"].startswith("Bearer")


async def test_admin_can_create_list_and_revoke_keys(ingest: InProcessIngest) -> None:
    """Keys made through the admin API work at once; revoked, they answer 401 at once; secrets
    are never listed; without the admin token the admin API answers 401."""
    admin = {"authorization": f"Bearer {ADMIN_TOKEN}"}
    created = await ingest.http.post(
        "/v1/admin/keys", json={"ministry": "digital", "label": "stats"}, headers=admin
    )
    assert created.status_code == 201, created.text
    new = created.json()
    assert new["key"].startswith(f"shk_{new['key_id']}_")
    accepted = await post_event(ingest, new["key"], kpi_event())
    assert accepted.status_code == 202

    listed = await ingest.http.get("/v1/admin/keys", params={"ministry": "digital"}, headers=admin)
    assert listed.status_code == 200
    entry = next(k for k in listed.json() if k["key_id"] == new["key_id"])
    assert "key" not in entry
    assert "secret_sha256" not in entry
    assert new["key"].split("_", 2)[2] not in listed.text

    revoked = await ingest.http.delete(f"/v1/admin/keys/{new['key_id']}", headers=admin)
    assert revoked.status_code == 200
    assert revoked.json()["revoked_at"] is not None
    refused = await post_event(ingest, new["key"], kpi_event())
    assert_problem(refused, 401, "unauthenticated", "Authorization")
    assert refused.json()["code"] == "invalid_key"

    unknown = await ingest.http.delete("/v1/admin/keys/0123456789ab", headers=admin)
    assert unknown.status_code == 404
    bad_ministry = await ingest.http.post(
        "/v1/admin/keys", json={"ministry": "nowhere"}, headers=admin
    )
    assert bad_ministry.status_code == 422
    assert (await ingest.http.get("/v1/admin/keys")).status_code == 401


async def test_oversized_and_unsupported_bodies(ingest: InProcessIngest, key: str) -> None:
    """A body over the limit answers 413; a body in neither mode answers 415."""
    event = kpi_event()
    event["data"]["note"] = "x" * 3_900
    big = {**event, "padding": "y" * 20_000}
    too_big = await post_event(ingest, key, big)
    assert_problem(too_big, 413, "payload-too-large", "(body)")
    plain = await ingest.http.post(
        "/v1/events",
        content=body(kpi_event()),
        headers={"content-type": "text/plain", **bearer(key)},
    )
    assert_problem(plain, 415, "unsupported-media-type", "Content-Type")


async def test_a_batch_answers_per_event_in_order(
    ingest: InProcessIngest, key: str, kafka: KafkaSettings, topics: TopicSettings
) -> None:
    """A batch answers 200 with one result per event, in order: accepted, duplicate, and each
    refusal with its own problem; only the accepted ones reach Kafka."""
    earlier = kpi_event(90.0)
    assert (await post_event(ingest, key, earlier)).status_code == 202
    good = [kpi_event(91.0), milestone_event(), measure_event()]
    impossible = kpi_event(130.0)
    batch: list[Any] = [
        good[0],
        earlier,
        {"type": "shinchoku.kpi.guessed.v1", "id": "x"},
        impossible,
        "not an object",
        good[1],
        kpi_event(ministry="mic"),
        good[2],
    ]
    answer = await ingest.http.post(
        "/v1/events:batch", content=body(batch), headers={**BATCH, **bearer(key)}
    )
    assert answer.status_code == 200, answer.text
    result = answer.json()
    statuses = [r["status"] for r in result["results"]]
    assert statuses == [202, 200, 422, 422, 422, 202, 403, 202]
    assert [r["index"] for r in result["results"]] == list(range(len(batch)))
    assert result["results"][1]["duplicate"] is True
    assert result["results"][2]["problem"]["type"] == PROBLEMS + "unknown-event-type"
    assert result["results"][3]["problem"]["type"] == PROBLEMS + "impossible-value"
    assert result["results"][3]["id"] == impossible["id"]
    assert result["results"][6]["problem"]["type"] == PROBLEMS + "source-not-allowed"
    assert (result["accepted"], result["duplicates"], result["rejected"]) == (3, 1, 4)
    found = await records_with_ids(
        kafka.bootstrap_servers, topics.events, [e["id"] for e in good] + [impossible["id"]], 20
    )
    assert set(found) == {e["id"] for e in good}


async def test_batch_limits_and_media_type(ingest: InProcessIngest, key: str) -> None:
    """More events than the documented count, or more bytes than the size, answer 413; a batch
    that is not an array answers 400; a batch in another content type answers 415."""
    headers = {**BATCH, **bearer(key)}
    too_many = await ingest.http.post(
        "/v1/events:batch", content=body([kpi_event() for _ in range(21)]), headers=headers
    )
    assert_problem(too_many, 413, "batch-too-large", "(body)")
    padded = [{**kpi_event(), "padding": "z" * 8_000} for _ in range(10)]
    too_big = await ingest.http.post("/v1/events:batch", content=body(padded), headers=headers)
    assert_problem(too_big, 413, "payload-too-large", "(body)")
    not_array = await ingest.http.post(
        "/v1/events:batch", content=body(kpi_event()), headers=headers
    )
    assert_problem(not_array, 400, "malformed-request", "(body)")
    wrong_type = await ingest.http.post(
        "/v1/events:batch", content=body([kpi_event()]), headers={**STRUCTURED, **bearer(key)}
    )
    assert_problem(wrong_type, 415, "unsupported-media-type", "Content-Type")


async def test_pending_claims_in_flight_stale_and_released(
    ingest: InProcessIngest, key: str, mongo: MongoClient, catalogue_database: str
) -> None:
    """A live pending claim answers 409 with Retry-After; a claim left pending by a crash longer
    than the takeover age, or released after a failed publish, no longer blocks: 202."""
    claims = mongo[catalogue_database][CLAIMS]
    now = datetime.now(UTC)

    async def claimed(event: dict[str, Any], at: datetime) -> None:
        dedup = f"{event['source']}\x1f{event['id']}"
        await claims.insert_one({"_id": claim_id(dedup, 0), "b": new_batch_id(at)})

    live, stale, released = kpi_event(), kpi_event(), kpi_event()
    await claimed(live, now)
    await claimed(stale, now - timedelta(hours=1))
    await claimed(released, now)
    await mongo[catalogue_database][RELEASED_CLAIMS].insert_one(
        {"_id": claim_id(f"{released['source']}\x1f{released['id']}", 0), "released_at": now}
    )

    in_flight = await post_event(ingest, key, live)
    assert_problem(in_flight, 409, "event-in-flight", "id")
    assert int(in_flight.headers["retry-after"]) >= 1
    assert (await post_event(ingest, key, stale)).status_code == 202
    assert (await post_event(ingest, key, released)).status_code == 202
    assert (await post_event(ingest, key, stale)).status_code == 200


async def test_concurrent_submissions_of_one_event_publish_it_once(
    ingest: InProcessIngest, key: str, kafka: KafkaSettings, topics: TopicSettings
) -> None:
    """Ten concurrent submissions of one event: exactly one 202, the others 200 or 409, and one
    record on Kafka."""
    event = kpi_event(93.3)
    answers = await asyncio.gather(*(post_event(ingest, key, event) for _ in range(10)))
    statuses = sorted(a.status_code for a in answers)
    assert statuses.count(202) == 1, statuses
    assert set(statuses) <= {200, 202, 409}
    found = await records_with_ids(kafka.bootstrap_servers, topics.events, [event["id"]])
    assert len(found[event["id"]]) == 1


async def test_metrics_count_events_by_type_ministry_and_outcome(
    ingest: InProcessIngest, key: str
) -> None:
    """/metrics exposes events by type, ministry and outcome, produce latency and in-flight."""
    await post_event(ingest, key, kpi_event(130.0))
    await post_event(ingest, key, kpi_event())
    text = (await ingest.http.get("/metrics")).text
    assert (
        'shinchoku_ingest_events_total{event_type="shinchoku.kpi.observed.v1",'
        'ministry="digital",outcome="accepted",reason=""}'
    ) in text
    assert 'outcome="rejected",reason="impossible_value"' in text
    assert "shinchoku_ingest_produce_duration_seconds_count" in text
    assert re.search(r'shinchoku_http_request_duration_seconds_bucket\{[^}]*service="ingest"', text)
    assert 'shinchoku_http_requests_in_flight{service="ingest"}' in text
    assert "shinchoku_ingest_events_in_flight" in text
    assert 'shinchoku_ingest_auth_failures_total{reason="missing"}' in text


async def test_too_many_requests_answers_429_with_retry_after(
    kafka: KafkaSettings,
    topics: TopicSettings,
    mongo_config: MongoSettings,
    catalogue_database: str,
    key: str,
) -> None:
    """Past its burst, a key's requests answer 429 with Retry-After, and nothing is published."""
    settings = ingest_settings(
        kafka,
        topics,
        mongo_config.model_copy(update={"database": catalogue_database}),
        rate_limit={"events_per_s": 0.2, "burst": 5},
        limits={"max_batch_events": 5},
    )
    async with ingest_in_process(settings) as limited:
        statuses = [(await post_event(limited, key, kpi_event())).status_code for _ in range(5)]
        assert statuses == [202] * 5
        refused = await post_event(limited, key, kpi_event())
        problem = assert_problem(refused, 429, "too-many-requests", "Authorization")
        assert problem["code"] == "rate_limited"
        assert int(refused.headers["retry-after"]) >= 1

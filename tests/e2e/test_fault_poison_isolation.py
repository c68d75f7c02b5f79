"""Issue 12 items 1 and 3 on the real ingest and kpi services (processes): one ministry's extreme
value never stops the partition it shares with other ministries' KPIs, and which report for one
as_of counts is decided by arrival, not by the sender's clock.

Before the fix, a value of 1e308 made the forecast overflow, the handler raised on every retry,
and the consumer retried for ever without committing: nothing behind it on the partition was
processed. A deterministic handler failure is now dead-lettered (shared/consumer.py; its own
tests are tests/unit/test_consumer_runner.py and tests/integration/test_consumer_runner.py),
and the evaluation no longer fails on such values at all (services/kpi/domain/arithmetic.py).
"""

from __future__ import annotations

import json
import math
import secrets
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest

from harness.services import RunningService, running_services, service_environment
from harness.stack import StackEndpoints
from services.ingest.adapters.keys import ApiKeyStore
from services.ingest.adapters.publisher import partition_of
from shared.catalogue_store import CatalogueStore
from shared.events.contracts import KpiObservedEvent
from shared.events.kafka_binding import encode_structured
from shared.kafka import create_producer, ensure_topics
from shared.mongo import MongoClient
from shared.settings import KafkaSettings, MongoSettings, TopicSettings
from tests.support.faults import eventually, read_dead_letters
from tests.support.stack import isolated_topics, random_suffix

pytestmark = pytest.mark.e2e

MINISTRY = "digital"
AS_OF = date.today() - timedelta(days=3)
# The acceptance bound of issue 12: a good event behind the poison is processed within this.
GOOD_EVENT_BOUND_S = 10.0


@dataclass(frozen=True)
class Setup:
    topics: TopicSettings
    database: str
    key: str
    kpis: dict[str, str]  # role -> KPI id, all on one partition of the events topic


def synthetic_kpi(kpi_id: str) -> dict[str, Any]:
    """A count (no upper bound in its unit) from 10 to 90 by the end of FY2030."""
    return {
        "_id": kpi_id,
        "id": kpi_id,
        "kind": "kpi",
        "measure_id": "m.poison-isolation",
        "name_ja": "試験指標",
        "name_en": "Test indicator",
        "unit": "件",
        "direction": "increase",
        "accumulation": "level",
        "ministries": [MINISTRY],
        "state": "active",
        "baseline": {"value": 10.0, "as_of": "2021-03-31"},
        "targets": [{"value": 90.0, "deadline": "2031-03-31", "deadline_text": "2030年度末"}],
    }


def same_partition_kpis(roles: tuple[str, ...], partitions: int) -> dict[str, str]:
    """KPI ids for `roles` whose records (keyed by KPI id, as ingest keys them) share a
    partition: the poison and the good events meet on one partition."""
    run = secrets.token_hex(3)
    ids = {role: f"kpi.isolation-{run}-{role}" for role in roles}
    target = partition_of(ids[roles[0]].encode(), tuple(range(partitions)))
    for role in roles[1:]:
        n = 0
        while partition_of(ids[role].encode(), tuple(range(partitions))) != target:
            n += 1
            ids[role] = f"kpi.isolation-{run}-{role}-{n}"
    return ids


@pytest.fixture(scope="module")
async def setup(
    kafka: KafkaSettings, mongo: MongoClient, mongo_config: MongoSettings
) -> AsyncIterator[Setup]:
    topics = isolated_topics(f"isolation{random_suffix()}")
    await ensure_topics(kafka, topics)
    database = f"{mongo_config.database}_isolation"
    kpis = same_partition_kpis(("huge", "direct", "good", "revised", "good2"), topics.partitions)
    store = CatalogueStore(mongo, database)
    for kpi_id in kpis.values():
        await store.upsert_item(synthetic_kpi(kpi_id))
    key, _ = await ApiKeyStore(mongo, database).create(MINISTRY, datetime.now(UTC), "e2e")
    yield Setup(topics, database, key, kpis)
    await mongo.drop_database(database)


@pytest.fixture(scope="module")
def services(
    setup: Setup, endpoints: StackEndpoints, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, RunningService]]:
    envs = {
        name: service_environment(
            name,
            endpoints=endpoints,
            topics=setup.topics,
            database=setup.database,
            admin_token="isolation-test",
        )
        for name in ("ingest", "kpi")
    }
    with running_services(envs, tmp_path_factory.mktemp("isolation-logs")) as started:
        yield started


def event(
    kpi_id: str, value: float, *, time: datetime | None = None, as_of: date = AS_OF
) -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "id": secrets.token_hex(8),
        "source": f"/ministries/{MINISTRY}",
        "type": KpiObservedEvent.TYPE,
        "subject": kpi_id,
        "time": (time or datetime.now(UTC)).isoformat(),
        "datacontenttype": "application/json",
        "data": {"kpi_id": kpi_id, "value": value, "as_of": as_of.isoformat()},
    }


async def post(http: httpx.AsyncClient, ingest: RunningService, key: str, body: Any) -> None:
    answer = await http.post(
        f"{ingest.url}/v1/events",
        content=json.dumps(body),
        headers={"content-type": "application/cloudevents+json", "authorization": f"Bearer {key}"},
    )
    assert answer.status_code == 202, answer.text


async def produce_directly(kafka: KafkaSettings, topic: str, body: dict[str, Any]) -> None:
    """A record written straight to the events topic with ingest's own encoder and key."""
    record = encode_structured(KpiObservedEvent.model_validate(body))
    producer = create_producer(kafka, client_suffix="isolation-test")
    await producer.start()
    try:
        await producer.send_and_wait(
            topic, key=record.key, value=record.value, headers=record.headers
        )
    finally:
        await producer.stop()


async def evaluated_value(
    http: httpx.AsyncClient, kpi: RunningService, kpi_id: str
) -> float | None:
    """The latest value the KPI's stored evaluation is based on (None before any: the sweep
    evaluates every catalogue KPI, to no_data, before its first event)."""
    answer = await http.get(f"{kpi.url}/v1/kpis/{kpi_id}")
    assert answer.status_code == 200, answer.text
    evaluation = answer.json()["evaluation"]
    latest = None if evaluation is None else evaluation["latest_value"]
    return None if latest is None else float(latest)


async def test_an_extreme_value_does_not_stop_the_partition_it_shares(
    setup: Setup, services: dict[str, RunningService], kafka: KafkaSettings
) -> None:
    """1e308 posted through ingest is refused at the door (422 impossible_value: values are
    bounded per unit, shared/events/validation.py) and -1e308 written straight to Kafka, on the
    partition of another KPI, is dead-lettered by kpi with the same reason: the good event for
    that KPI behind it is evaluated within 10 s, the two KPIs stay evaluated on their earlier
    finite value, and kpi stays ready with its consumer not retrying anything."""
    ingest, kpi = services["ingest"], services["kpi"]
    kpis = setup.kpis
    async with httpx.AsyncClient(timeout=20) as http:
        # An ordinary earlier value first: with two dates the forecast has a trend, which the
        # extreme value made overflow.
        earlier = AS_OF - timedelta(days=30)
        await post(http, ingest, setup.key, event(kpis["huge"], 40.0, as_of=earlier))
        await post(http, ingest, setup.key, event(kpis["direct"], 40.0, as_of=earlier))
        refused = await http.post(
            f"{ingest.url}/v1/events",
            content=json.dumps(event(kpis["huge"], 1e308)),
            headers={
                "content-type": "application/cloudevents+json",
                "authorization": f"Bearer {setup.key}",
            },
        )
        assert refused.status_code == 422, refused.text
        assert refused.json()["code"] == "impossible_value"
        direct = event(kpis["direct"], -1e308)
        await produce_directly(kafka, setup.topics.events, direct)
        await post(http, ingest, setup.key, event(kpis["good"], 42.0))

        async def good_evaluated() -> bool:
            return await evaluated_value(http, kpi, kpis["good"]) == 42.0

        await eventually(
            good_evaluated,
            timeout_s=GOOD_EVENT_BOUND_S,
            every_s=0.1,
            what="the good event behind the extreme values evaluated",
        )
        dead = await read_dead_letters(
            kafka.bootstrap_servers,
            setup.topics.dead_letter,
            until=lambda seen: any(direct["id"].encode() in (d.value or b"") for d in seen),
        )
        (letter,) = [d for d in dead if direct["id"].encode() in (d.value or b"")]
        assert letter.dlq["dlq_service"] == "kpi"
        assert letter.dlq["dlq_reason"] == "impossible_value", letter.dlq
        for role in ("huge", "direct"):
            answer = await http.get(f"{kpi.url}/v1/kpis/{kpis[role]}")
            evaluation = answer.json()["evaluation"]
            assert evaluation is not None, role
            assert evaluation["latest_value"] == 40.0, role
            numbers = [
                v
                for v in (*evaluation.values(), *evaluation["explanation"]["inputs"].values())
                if isinstance(v, float)
            ]
            assert all(math.isfinite(v) for v in numbers), (role, evaluation)

        ready = await http.get(f"{kpi.url}/readyz")
        assert ready.status_code == 200, ready.text
        assert ready.json()["detail"]["consumer"] == {"retrying": False}


async def test_a_correction_arriving_later_wins_over_a_report_dated_9999(
    setup: Setup, services: dict[str, RunningService], kafka: KafkaSettings
) -> None:
    """A report for one as_of whose sender dated it 9999-12-31 (written straight to Kafka; kpi
    re-checks it and dead-letters it, time_in_future), then a correction for the same as_of
    through ingest with the real time: the correction is the value the KPI is evaluated on."""
    ingest, kpi = services["ingest"], services["kpi"]
    revised = setup.kpis["revised"]
    forged = event(revised, 90.0, time=datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC))
    async with httpx.AsyncClient(timeout=20) as http:
        # Written first, so it is before the correction in the KPI's partition.
        await produce_directly(kafka, setup.topics.events, forged)
        await post(http, ingest, setup.key, event(revised, 40.0))
        # A good event after the correction on the same partition: once it is evaluated, the
        # correction (before it in the partition) has been handled too.
        await post(http, ingest, setup.key, event(setup.kpis["good2"], 7.0))

        async def behind_evaluated() -> bool:
            return await evaluated_value(http, kpi, setup.kpis["good2"]) == 7.0

        await eventually(behind_evaluated, timeout_s=60, what="the event after the correction")
        assert await evaluated_value(http, kpi, revised) == 40.0

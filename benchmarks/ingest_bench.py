"""Ingest throughput: events/s accepted over HTTP, against a bare aiokafka producer.

Starts the ingest service as a process (uvicorn, one worker) on its own topic and database (the
local stack's Kafka and FerretDB, with the real catalogue loaded), then measures, in one run:

1. **single**: ``POST /v1/events``, one event per request, from concurrent clients;
2. **batch**: ``POST /v1/events:batch``, ``--batch-size`` events per request, concurrent clients;
3. **bare producer**: the same records (the same JSON bytes and keys ingest writes) produced by a
   bare ``AIOKafkaProducer`` with ingest's producer settings (idempotent, ``acks=all``), sending
   each batch's records and awaiting every acknowledgement, the same number of batches in flight;
   run once before and once after ingest (with ingest stopped), the ratio uses their mean.

Only events answered 202 (Kafka acknowledged) count. Prints a table and the ratios ingest/bare,
and writes ``bench-results/ingest.json``. The aim: batch ingest at no less than half the bare
producer's rate.

    make bench-ingest
    python -m benchmarks.ingest_bench --events 20000 --single-events 3000 --concurrency 32
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import secrets
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a file, not only with -m
    sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
from aiokafka.admin import AIOKafkaAdminClient  # noqa: E402

from services.ingest.adapters.keys import ApiKeyStore  # noqa: E402
from shared.catalogue.loader import load_into, validated_catalogue  # noqa: E402
from shared.events.contracts import ministry_event_adapter  # noqa: E402
from shared.events.kafka_binding import EncodedRecord, encode_structured  # noqa: E402
from shared.kafka import create_producer, ensure_topics  # noqa: E402
from shared.mongo import MongoClient, create_mongo_client  # noqa: E402
from shared.settings import KafkaSettings, MongoSettings, TopicSettings  # noqa: E402
from tests.support.services import (  # noqa: E402
    service_environment,
    start_service,
    stop_service,
    wait_ready,
)
from tests.support.stack import StackEndpoints, isolated_topics, kafka_settings  # noqa: E402

MINISTRY = "digital"
RESULTS = ROOT / "bench-results" / "ingest.json"


@dataclass
class Measurement:
    name: str
    events: int
    accepted: int
    seconds: float
    requests: int

    @property
    def rate(self) -> float:
        return self.accepted / self.seconds if self.seconds else 0.0


def owned_entries(catalogue_json: dict[str, Any]) -> list[dict[str, Any]]:
    """Catalogue KPIs (percentages) and milestones the benchmark's ministry may report on."""
    entries = [e for e in catalogue_json["kpis"] if MINISTRY in e["ministries"]]
    return [e for e in entries if e["kind"] == "milestone" or e["unit"] == "%"]


def make_events(entries: list[dict[str, Any]], count: int, tag: str) -> list[dict[str, Any]]:
    today = date.today().isoformat()
    now = datetime.now(UTC).isoformat()
    events = []
    for n in range(count):
        entry = entries[n % len(entries)]
        common = {
            "specversion": "1.0",
            "id": f"bench-{tag}-{n}",
            "source": f"/ministries/{MINISTRY}",
            "subject": entry["id"],
            "time": now,
            "datacontenttype": "application/json",
        }
        if entry["kind"] == "kpi":
            data: dict[str, Any] = {
                "kpi_id": entry["id"],
                "value": 50.0 + (n % 40),
                "as_of": today,
                "note": None,
            }
            events.append({**common, "type": "shinchoku.kpi.observed.v1", "data": data})
        else:
            data = {
                "milestone_id": entry["id"],
                "state": "in_progress",
                "percent_complete": float(n % 100),
                "expected_completion": None,
                "as_of": today,
                "note": None,
            }
            events.append({**common, "type": "shinchoku.milestone.reported.v1", "data": data})
    return events


def records_of(events: list[dict[str, Any]]) -> list[EncodedRecord]:
    """Exactly what ingest writes for these events (partitionkey = the entry id)."""
    records = []
    for raw in events:
        event = ministry_event_adapter.validate_python(raw)
        records.append(encode_structured(event.model_copy(update={"partitionkey": event.subject})))
    return records


async def prepare(endpoints: StackEndpoints, database: str) -> str:
    mongo: MongoClient = create_mongo_client(
        MongoSettings(url=endpoints.mongo, database=database), app_name="bench-ingest"
    )
    try:
        await load_into(mongo[database], validated_catalogue(check_sources=False), now=_now())
        key, _ = await ApiKeyStore(mongo, database).create(MINISTRY, _now(), "bench")
        return key
    finally:
        await mongo.close()


def _now() -> datetime:
    return datetime.now(UTC)


async def drive(
    http: httpx.AsyncClient,
    path: str,
    bodies: list[bytes],
    headers: dict[str, str],
    concurrency: int,
    events_per_body: int,
) -> tuple[int, float]:
    """POST every body with `concurrency` clients; (events answered 202, seconds)."""
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    for item in bodies:
        queue.put_nowait(item)
    accepted = 0
    failures: list[str] = []

    async def post(content: bytes) -> httpx.Response:
        # A lost connection is retried: resending is safe (deduplicated by source + id), and
        # what a lost answer had accepted comes back as a duplicate, counted below.
        for attempt in range(3):
            try:
                return await http.post(path, content=content, headers=headers)
            except httpx.TransportError:
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    async def client() -> None:
        nonlocal accepted
        while not queue.empty():
            answer = await post(queue.get_nowait())
            if path.endswith(":batch") and answer.status_code == 200:
                accepted += answer.json()["accepted"] + answer.json()["duplicates"]
            elif answer.status_code in {200, 202}:
                accepted += events_per_body
            else:
                failures.append(f"{answer.status_code} {answer.text[:200]}")

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    if failures:
        print(f"  {len(failures)} requests not accepted, e.g. {failures[0]}", file=sys.stderr)
    return accepted, elapsed


async def bare_producer(
    kafka: KafkaSettings, topic: str, batches: list[list[EncodedRecord]], in_flight: int
) -> tuple[int, float]:
    """Produce each batch (send all, await all acks) with `in_flight` batches at a time."""
    producer = create_producer(kafka, client_suffix="bench-bare")
    await producer.start()
    try:
        queue: asyncio.Queue[list[EncodedRecord]] = asyncio.Queue()
        for batch in batches:
            queue.put_nowait(batch)
        acked = 0

        async def worker() -> None:
            nonlocal acked
            while not queue.empty():
                batch = queue.get_nowait()
                futures = [
                    await producer.send(topic, value=r.value, key=r.key, headers=r.headers)
                    for r in batch
                ]
                results = await asyncio.gather(*futures, return_exceptions=True)
                acked += sum(not isinstance(r, BaseException) for r in results)

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(in_flight)))
        return acked, time.perf_counter() - started
    finally:
        await producer.stop()


async def run(args: argparse.Namespace) -> dict[str, Any]:
    endpoints = StackEndpoints()
    run_id = secrets.token_hex(4)
    database = f"bench_ingest_{run_id}"
    topics = isolated_topics(f"bench{run_id}", partitions=6)
    kafka = kafka_settings(endpoints)
    await ensure_topics(kafka, topics)
    key = await prepare(endpoints, database)
    catalogue_json = validated_catalogue(check_sources=False).show_json()
    entries = owned_entries(catalogue_json)

    batched = make_events(entries, args.events, f"{run_id}-batch")
    chunks = [batched[i : i + args.batch_size] for i in range(0, len(batched), args.batch_size)]
    bare_batches = [records_of(chunk) for chunk in chunks]
    measurements: list[Measurement] = []

    async def bare(label: str) -> Measurement:
        # Run with the ingest process stopped: each side has the machine to itself. Once before
        # and once after ingest, so a change of load on the shared machine shows.
        print(f"bare producer ({label}): the same {len(batched)} records in {len(chunks)} batches")
        acked, seconds = await bare_producer(kafka, topics.events, bare_batches, args.batch_clients)
        return Measurement(f"bare aiokafka {label}", len(batched), acked, seconds, len(chunks))

    bare_before = await bare("before")

    env = service_environment(
        "ingest",
        endpoints=endpoints,
        topics=topics,
        database=database,
        admin_token=secrets.token_urlsafe(16),
        extra={
            "SHINCHOKU_INGEST_LOG_LEVEL": "WARNING",
            "SHINCHOKU_INGEST_RATE_LIMIT__EVENTS_PER_S": "1000000000",
            "SHINCHOKU_INGEST_RATE_LIMIT__BURST": "1000000000",
        },
    )
    log_dir = Path(tempfile.mkdtemp(prefix="bench-ingest-"))
    service = start_service("ingest", env, log_dir)
    try:
        await asyncio.to_thread(wait_ready, service)
        auth = {"authorization": f"Bearer {key}"}
        # Idle connections are dropped before uvicorn's 5 s keep-alive closes them.
        limits = httpx.Limits(
            max_connections=args.concurrency, max_keepalive_connections=64, keepalive_expiry=2
        )
        async with httpx.AsyncClient(base_url=service.url, timeout=120, limits=limits) as http:
            warm = make_events(entries, 200, f"{run_id}-warm")
            await drive(
                http,
                "/v1/events:batch",
                [json.dumps(warm[i : i + 100]).encode() for i in range(0, len(warm), 100)],
                {**auth, "content-type": "application/cloudevents-batch+json"},
                2,
                100,
            )

            singles = make_events(entries, args.single_events, f"{run_id}-single")
            print(f"single: {len(singles)} POST /v1/events, {args.concurrency} clients")
            accepted, seconds = await drive(
                http,
                "/v1/events",
                [json.dumps(e).encode() for e in singles],
                {**auth, "content-type": "application/cloudevents+json"},
                args.concurrency,
                1,
            )
            measurements.append(
                Measurement("ingest single", len(singles), accepted, seconds, len(singles))
            )

            print(
                f"batch: {len(batched)} events in {len(chunks)} POST /v1/events:batch, "
                f"{args.batch_clients} clients"
            )
            accepted, seconds = await drive(
                http,
                "/v1/events:batch",
                [json.dumps(chunk).encode() for chunk in chunks],
                {**auth, "content-type": "application/cloudevents-batch+json"},
                args.batch_clients,
                args.batch_size,
            )
            measurements.append(
                Measurement("ingest batch", len(batched), accepted, seconds, len(chunks))
            )
    finally:
        await asyncio.to_thread(stop_service, service)

    bare_after = await bare("after")
    measurements += [bare_before, bare_after]
    single, batch = measurements[0], measurements[1]
    bare_rate = (bare_before.rate + bare_after.rate) / 2
    report = {
        "when": datetime.now(UTC).isoformat(),
        "machine": {"python": platform.python_version(), "cpus": _cpus()},
        "settings": {
            "single_events": args.single_events,
            "events": args.events,
            "batch_size": args.batch_size,
            "single_clients": args.concurrency,
            "batch_clients": args.batch_clients,
            "partitions": topics.partitions,
        },
        "results": [{**asdict(m), "events_per_s": round(m.rate, 1)} for m in measurements],
        "bare_events_per_s_mean": round(bare_rate, 1),
        "ratios": {
            "single_vs_bare": round(single.rate / bare_rate, 3) if bare_rate else None,
            "batch_vs_bare": round(batch.rate / bare_rate, 3) if bare_rate else None,
        },
        "load_average": _load(),
        "aim": "batch_vs_bare >= 0.5",
        "database": database,
        "topic": topics.events,
    }
    await cleanup(endpoints, database, kafka, topics)
    return report


def _load() -> list[float]:
    import os

    return [round(x, 2) for x in os.getloadavg()]


def _cpus() -> int:
    import os

    return os.cpu_count() or 0


async def cleanup(
    endpoints: StackEndpoints, database: str, kafka: KafkaSettings, topics: TopicSettings
) -> None:
    """Drop the run's database and delete its topics (the shared stack keeps nothing)."""
    mongo: MongoClient = create_mongo_client(
        MongoSettings(url=endpoints.mongo, database=database), app_name="bench-ingest"
    )
    try:
        await mongo.drop_database(database)
    finally:
        await mongo.close()
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka.bootstrap_servers)
    await admin.start()
    try:
        await admin.delete_topics([topics.events, topics.status, topics.dead_letter])
    finally:
        await admin.close()


def print_report(report: dict[str, Any]) -> None:
    print()
    print(f"{'path':<22} {'events':>8} {'accepted':>9} {'seconds':>9} {'events/s':>10}")
    for row in report["results"]:
        print(
            f"{row['name']:<22} {row['events']:>8} {row['accepted']:>9} "
            f"{row['seconds']:>9.2f} {row['events_per_s']:>10.1f}"
        )
    ratios = report["ratios"]
    print()
    print(f"bare producer, mean of both runs: {report['bare_events_per_s_mean']} events/s")
    print(f"single / bare producer: {ratios['single_vs_bare']}")
    print(f"batch  / bare producer: {ratios['batch_vs_bare']}   (aim: >= 0.5)")
    print(f"load average during the run: {report['load_average']} (the machine is shared)")
    print(f"written: {RESULTS.relative_to(ROOT)}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000, help="events sent in batches")
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--batch-clients", type=int, default=4)
    parser.add_argument("--single-events", type=int, default=3_000)
    parser.add_argument("--concurrency", type=int, default=32, help="clients for single POSTs")
    args = parser.parse_args(argv)
    report = asyncio.run(run(args))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    print_report(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())

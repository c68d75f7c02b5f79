"""`make bench-kpi`: sustained events/s through the kpi service, against a raw baseline.

Both sides read the same kind of records (CloudEvents kpi.observed, structured mode) from their
own topic on the same broker and write to the same FerretDB, in the same run:

- baseline: a bare aiokafka consumer that bulk-inserts each fetched batch (insert_many) and
  commits: the ceiling for "consume and store";
- service: the kpi service as a real process (python -m services.kpi), which also folds each
  event into the KPI's state, re-evaluates its status and publishes status changes.

Then the per-event cost with history: the same number of events after the KPIs already hold
`--history` prior observations, to show the cost does not grow with a KPI's history.
Figures are printed and written to bench-results/kpi.json; nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import subprocess
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient

from shared.catalogue_store import CatalogueStore
from shared.events.contracts import KpiObservedEvent
from shared.events.kafka_binding import EncodedRecord, encode_structured
from shared.kafka import ensure_topics
from shared.mongo import MongoClient, create_mongo_client
from shared.settings import KafkaSettings, MongoSettings, TopicSettings

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench-results"
# `--profile`: run the service under cProfile, written to bench-results/kpi-service.prof.
PROFILE_ARGS: list[str] = []


def synthetic_kpis(count: int) -> list[dict[str, Any]]:
    return [
        {
            "_id": f"kpi.bench-{i:05d}",
            "id": f"kpi.bench-{i:05d}",
            "kind": "kpi",
            "measure_id": f"m.bench-{i % 20:02d}",
            "unit": "%",
            "direction": "increase",
            "accumulation": "level",
            "ministries": ["digital"],
            "state": "active",
            "baseline": {"value": 10.0, "as_of": "2021-03-31"},
            "targets": [{"value": 90.0, "deadline": "2031-03-31", "deadline_text": "2030年度末"}],
        }
        for i in range(count)
    ]


def events_for(kpis: list[dict[str, Any]], count: int, start_day: int) -> list[EncodedRecord]:
    """`count` observations spread round-robin over the KPIs, one as_of day apart per round."""
    now = datetime.now(UTC)
    records = []
    for n in range(count):
        kpi = kpis[n % len(kpis)]
        # One as_of day per round, ending near today so the KPIs are current, not stale.
        day = date.today() - timedelta(days=900) + timedelta(days=start_day + n // len(kpis))
        event = KpiObservedEvent.model_validate(
            {
                "specversion": "1.0",
                "id": secrets.token_hex(10),
                "source": "/ministries/digital",
                "type": KpiObservedEvent.TYPE,
                "subject": kpi["id"],
                "time": now,
                "partitionkey": kpi["id"],
                "data": {"kpi_id": kpi["id"], "value": 10 + (n % 80), "as_of": day},
            }
        )
        records.append(encode_structured(event))
    return records


async def produce(kafka: KafkaSettings, topic: str, records: list[Any]) -> None:
    producer = AIOKafkaProducer(
        bootstrap_servers=kafka.bootstrap_servers, acks="all", enable_idempotence=True, linger_ms=5
    )
    await producer.start()
    try:
        futures = [
            await producer.send(topic, value=r.value, key=r.key, headers=r.headers) for r in records
        ]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def committed_total(admin: AIOKafkaAdminClient, group: str, topic: str) -> int:
    offsets = await admin.list_consumer_group_offsets(group)
    return sum(meta.offset for tp, meta in offsets.items() if tp.topic == topic and meta.offset > 0)


async def wait_for_commits(
    admin: AIOKafkaAdminClient, group: str, topic: str, total: int, timeout_s: float
) -> tuple[float, int, float]:
    """Polls the group's committed offsets: the service commits a batch only after its states
    are stored and its status changes published. Returns (time the committed count first
    moved, the count before, time it reached `total`)."""
    base = await committed_total(admin, group, topic)
    first: float | None = None
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        count = await committed_total(admin, group, topic)
        now = time.perf_counter()
        if first is None and count > base:
            first = now
        if count >= total:
            return first or now, base, now
        await asyncio.sleep(0.1)
    raise TimeoutError(f"{group}: not all {total} records committed within {timeout_s}s")


async def baseline_consumer(
    kafka: KafkaSettings, topic: str, mongo: MongoClient, database: str, total: int
) -> float:
    """A bare consumer with bulk inserts: events/s from its first stored batch to the last."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=kafka.bootstrap_servers,
        group_id=f"bench-baseline-{secrets.token_hex(4)}",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_poll_records=500,
    )
    await consumer.start()
    coll = mongo[database]["baseline_events"]
    stored = 0
    first: float | None = None
    try:
        while stored < total:
            batches = await consumer.getmany(timeout_ms=500, max_records=500)
            for records in batches.values():
                docs = [
                    {"_id": r.offset + r.partition * 10**9, "value": json.loads(r.value)}
                    for r in records
                ]
                if docs:
                    await coll.insert_many(docs, ordered=False)
                    stored += len(docs)
                    first = first or time.perf_counter()
            if batches:
                await consumer.commit()
    finally:
        await consumer.stop()
    assert first is not None
    return total / max(time.perf_counter() - first, 1e-9)


def start_kpi_service(
    kafka: KafkaSettings, topics: TopicSettings, mongo: MongoSettings, group: str, log_path: Path
) -> tuple[subprocess.Popen[bytes], str]:
    port = 18000 + secrets.randbelow(1000)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHINCHOKU_")}
    prefix = "SHINCHOKU_KPI_"
    env.update(
        {
            f"{prefix}KAFKA__BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
            f"{prefix}MONGO__URL": mongo.url,
            f"{prefix}MONGO__DATABASE": mongo.database,
            f"{prefix}TOPICS__EVENTS": topics.events,
            f"{prefix}TOPICS__STATUS": topics.status,
            f"{prefix}TOPICS__DEAD_LETTER": topics.dead_letter,
            f"{prefix}CONSUMER_GROUP": group,
            f"{prefix}SWEEP_INTERVAL_S": "3600",
            f"{prefix}LOG_LEVEL": "WARNING",
        }
    )
    with log_path.open("ab") as out:
        process = subprocess.Popen(
            [sys.executable, *PROFILE_ARGS, "-m", "services.kpi", "--port", str(port)],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return process, url
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    process.kill()
    raise RuntimeError(f"kpi service not ready; see {log_path}")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def main(args: argparse.Namespace) -> dict[str, Any]:
    kafka = KafkaSettings(bootstrap_servers=args.kafka)
    run = secrets.token_hex(3)
    mongo_settings = MongoSettings(url=args.mongo, database=f"bench_kpi_{run}")
    mongo = create_mongo_client(mongo_settings, app_name="bench-kpi")
    topics = TopicSettings(
        events=f"bench.{run}.events",
        status=f"bench.{run}.status",
        dead_letter=f"bench.{run}.dlq",
        partitions=6,
    )
    baseline_topic = TopicSettings(
        events=f"bench.{run}.baseline",
        status=f"bench.{run}.bs",
        dead_letter=f"bench.{run}.bdlq",
        partitions=6,
    )
    await ensure_topics(kafka, topics)
    await ensure_topics(kafka, baseline_topic)
    kpis = synthetic_kpis(args.kpis)
    store = CatalogueStore(mongo, mongo_settings.database)
    for kpi in kpis:
        await store.upsert_item(kpi)
    results: dict[str, Any] = {
        "events": args.events,
        "kpis": args.kpis,
        "history": args.history,
        "machine": os.uname().nodename,
        "cpus": os.cpu_count(),
        "at": datetime.now(UTC).isoformat(),
    }
    RESULTS.mkdir(exist_ok=True)
    log_path = RESULTS / f"kpi-service-{run}.log"
    try:
        await produce(kafka, baseline_topic.events, events_for(kpis, args.events, 0))
        results["baseline_events_per_s"] = await baseline_consumer(
            kafka, baseline_topic.events, mongo, mongo_settings.database, args.events
        )

        group = f"bench-kpi-{run}"
        process, _url = start_kpi_service(kafka, topics, mongo_settings, group, log_path)
        admin = AIOKafkaAdminClient(bootstrap_servers=kafka.bootstrap_servers)
        await admin.start()
        produced_so_far = 0
        try:

            async def measured(count: int, start_day: int) -> float:
                nonlocal produced_so_far
                produced = asyncio.create_task(
                    produce(kafka, topics.events, events_for(kpis, count, start_day))
                )
                produced_so_far += count
                first, base, last = await wait_for_commits(
                    admin, group, topics.events, produced_so_far, timeout_s=900
                )
                await produced
                return (produced_so_far - base) / max(last - first, 1e-9)

            results["service_events_per_s_no_history"] = await measured(args.events, 0)
            # Fill each KPI's history up to `history` observations in all, then measure again.
            prior = args.events
            while prior < args.history:
                chunk = min(50_000, args.history - prior)
                await measured(chunk, prior // len(kpis) + 1)
                prior += chunk
            results["prior_observations"] = prior
            results["service_events_per_s_with_history"] = await measured(
                args.events, prior // len(kpis) + 1
            )
            results["kpi_service_peak_rss_mb"] = round(rss_mb(process.pid), 1)
        finally:
            await admin.close()
            process.terminate()
            process.wait(timeout=30)
    finally:
        await mongo.drop_database(mongo_settings.database)
        await mongo.close()
    results["ratio_to_baseline"] = (
        results["service_events_per_s_no_history"] / results["baseline_events_per_s"]
    )
    no_history = results["service_events_per_s_no_history"]
    results["per_event_ms_no_history"] = 1000 / no_history
    results["per_event_ms_with_history"] = 1000 / results["service_events_per_s_with_history"]
    return results


def report(results: dict[str, Any]) -> None:
    print(
        f"kpi service benchmark ({results['events']} events over {results['kpis']} KPIs, "
        f"{results['cpus']} CPUs)"
    )
    rows = [
        ("bare consumer + insert_many (baseline)", results["baseline_events_per_s"]),
        ("kpi service, no prior history", results["service_events_per_s_no_history"]),
        (
            f"kpi service, {results['prior_observations']} prior observations",
            results["service_events_per_s_with_history"],
        ),
    ]
    for name, rate in rows:
        print(f"  {name:<52} {rate:>10.0f} events/s")
    print(f"  ratio service/baseline: {results['ratio_to_baseline']:.2f}")
    print(
        f"  per-event cost: {results['per_event_ms_no_history']:.3f} ms with no history, "
        f"{results['per_event_ms_with_history']:.3f} ms with history"
    )
    print(f"  kpi service peak RSS: {results['kpi_service_peak_rss_mb']} MB")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kafka", default=os.environ.get("SHINCHOKU_TEST_KAFKA", "127.0.0.1:9092"))
    parser.add_argument(
        "--mongo", default=os.environ.get("SHINCHOKU_TEST_MONGO", "mongodb://127.0.0.1:27017")
    )
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--kpis", type=int, default=200)
    parser.add_argument("--history", type=int, default=100_000)
    parser.add_argument("--profile", action="store_true", help="profile the service (cProfile)")
    arguments = parser.parse_args()
    if arguments.profile:
        PROFILE_ARGS.extend(["-m", "cProfile", "-o", str(RESULTS / "kpi-service.prof")])
    figures = asyncio.run(main(arguments))
    report(figures)
    (RESULTS / "kpi.json").write_text(json.dumps(figures, indent=2))

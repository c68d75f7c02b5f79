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
producer's rate. `make bench` (benchmarks/run_all.py) runs the same measurements with the others.

    make bench-ingest
    python -m benchmarks.ingest_bench --events 20000 --single-events 3000 --concurrency 32
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import httpx

from benchmarks.common import (
    MINISTRY,
    RESULTS,
    Rate,
    bare_produce,
    create_api_key,
    http_drive,
    http_limits,
    kafka_records,
    load_average,
    machine,
    scratch,
    service_env,
    services_running,
)
from shared.catalogue.loader import load_into, validated_catalogue

ROOT = Path(__file__).resolve().parents[1]
RESULT_FILE = RESULTS / "ingest.json"


@dataclass
class Measurement:
    name: str
    events: int
    rate: Rate
    requests: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "events": self.events,
            "accepted": self.rate.count,
            "seconds": self.rate.seconds,
            "requests": self.requests,
            "events_per_s": round(self.rate.per_s, 1),
        }


def owned_entries(catalogue_json: dict[str, Any]) -> list[dict[str, Any]]:
    """Catalogue KPIs (percentages) and milestones the benchmark's ministry may report on."""
    entries = [e for e in catalogue_json["kpis"] if MINISTRY in e["ministries"]]
    return [e for e in entries if e["kind"] == "milestone" or e["unit"] == "%"]


def make_events(entries: list[dict[str, Any]], count: int, tag: str) -> list[dict[str, Any]]:
    """Observations of the real catalogue's KPIs and reports on its milestones."""
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


async def run(args: argparse.Namespace) -> dict[str, Any]:
    async with scratch("i") as resources:
        topics = await resources.topic_set("ingest")
        database = resources.database("ingest")
        catalogue = validated_catalogue(check_sources=False)
        await load_into(resources.mongo[database], catalogue, now=datetime.now(UTC))
        key = await create_api_key(resources.mongo, database)
        entries = owned_entries(catalogue.show_json())

        batched = make_events(entries, args.events, f"{resources.run_id}-batch")
        chunks = [batched[i : i + args.batch_size] for i in range(0, len(batched), args.batch_size)]
        records = kafka_records(batched)

        async def bare(label: str) -> Measurement:
            # Run with the ingest process stopped: each side has the machine to itself. Once
            # before and once after ingest, so a change of load on the shared machine shows.
            print(
                f"bare producer ({label}): the same {len(records)} records in {len(chunks)} batches"
            )
            rate = await bare_produce(
                resources.kafka,
                topics.events,
                records,
                batch_size=args.batch_size,
                in_flight=args.batch_clients,
            )
            return Measurement(f"bare aiokafka {label}", len(records), rate, len(chunks))

        bare_before = await bare("before")
        auth = {"authorization": f"Bearer {key}"}
        single_headers = {**auth, "content-type": "application/cloudevents+json"}
        batch_headers = {**auth, "content-type": "application/cloudevents-batch+json"}
        env = service_env("ingest", resources, topics, database)
        async with (
            services_running([("ingest", env)], resources.log_dir) as (service,),
            httpx.AsyncClient(
                base_url=service.url, timeout=120, limits=http_limits(args.concurrency)
            ) as http,
        ):
            warm = make_events(entries, 200, f"{resources.run_id}-warm")
            warm_bodies = [json.dumps(warm[i : i + 100]).encode() for i in range(0, 200, 100)]
            await http_drive(http, "/v1/events:batch", warm_bodies, batch_headers, 2, 100)

            singles = make_events(entries, args.single_events, f"{resources.run_id}-single")
            print(f"single: {len(singles)} POST /v1/events, {args.concurrency} clients")
            rate, failures = await http_drive(
                http,
                "/v1/events",
                [json.dumps(e).encode() for e in singles],
                single_headers,
                args.concurrency,
                1,
            )
            single = Measurement("ingest single", len(singles), rate, len(singles))
            print(
                f"batch: {len(batched)} events in {len(chunks)} POST /v1/events:batch, "
                f"{args.batch_clients} clients"
            )
            rate, batch_failures = await http_drive(
                http,
                "/v1/events:batch",
                [json.dumps(chunk).encode() for chunk in chunks],
                batch_headers,
                args.batch_clients,
                args.batch_size,
            )
            batch = Measurement("ingest batch", len(batched), rate, len(chunks))
        for failure in (failures + batch_failures)[:1]:
            print(f"  {len(failures + batch_failures)} requests not accepted, e.g. {failure}")
        bare_after = await bare("after")
    measurements = [single, batch, bare_before, bare_after]
    bare_rate = (bare_before.rate.per_s + bare_after.rate.per_s) / 2
    return {
        "when": datetime.now(UTC).isoformat(),
        "machine": machine(),
        "settings": {
            "single_events": args.single_events,
            "events": args.events,
            "batch_size": args.batch_size,
            "single_clients": args.concurrency,
            "batch_clients": args.batch_clients,
            "partitions": topics.partitions,
        },
        "results": [m.as_dict() for m in measurements],
        "bare_events_per_s_mean": round(bare_rate, 1),
        "ratios": {
            "single_vs_bare": round(single.rate.per_s / bare_rate, 3) if bare_rate else None,
            "batch_vs_bare": round(batch.rate.per_s / bare_rate, 3) if bare_rate else None,
        },
        "load_average": load_average(),
        "aim": "batch_vs_bare >= 0.5",
    }


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
    print(f"written: {RESULT_FILE.relative_to(ROOT)}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000, help="events sent in batches")
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--batch-clients", type=int, default=4)
    parser.add_argument("--single-events", type=int, default=3_000)
    parser.add_argument("--concurrency", type=int, default=32, help="clients for single POSTs")
    args = parser.parse_args(argv)
    report = asyncio.run(run(args))
    RESULT_FILE.parent.mkdir(parents=True, exist_ok=True)
    RESULT_FILE.write_text(json.dumps(report, indent=2) + "\n")
    print_report(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())

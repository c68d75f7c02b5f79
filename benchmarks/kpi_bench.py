"""`make bench-kpi`: sustained events/s through the kpi service, against a raw baseline.

Both sides read the same kind of records (CloudEvents kpi.observed, structured mode) from their
own topic on the same broker and write to the same FerretDB, in the same run:

- baseline: a bare aiokafka consumer that bulk-inserts each fetched batch (insert_many) and
  commits: the ceiling for "consume and store";
- service: the kpi service as a real process (python -m services.kpi), which also folds each
  event into the KPI's state, re-evaluates its status and publishes status changes. Its rate is
  read from its consumer group's committed offsets (it commits only after storing and
  publishing).

Then the per-event cost with history: the same number of events after the KPIs already hold
`--history` prior observations (sent through the service), to show the cost does not grow with a
KPI's history. Figures are printed and written to bench-results/kpi.json; nothing is asserted.
`make bench` (benchmarks/run_all.py) measures this and more in one run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient

from benchmarks.common import (
    RESULTS,
    bare_consume,
    bare_produce,
    insert_catalogue,
    kafka_records,
    machine,
    observation_events,
    peak_rss_mb,
    scratch,
    service_env,
    synthetic_kpis,
    wait_for_commits,
)
from harness.services import start_service, stop_service, wait_ready
from shared.kafka import client_options

# `--profile`: run the service under cProfile, written to bench-results/kpi-service.prof.
PROFILE_ARGS: list[str] = []


async def main(args: argparse.Namespace) -> dict[str, Any]:
    async with scratch("k") as resources:
        kafka = resources.kafka
        topics = await resources.topic_set("service")
        baseline_topics = await resources.topic_set("baseline")
        database = resources.database("kpi")
        kpis = synthetic_kpis(args.kpis)
        await insert_catalogue(resources.mongo, database, kpis)
        results: dict[str, Any] = {
            "events": args.events,
            "kpis": args.kpis,
            "history": args.history,
            "machine": machine(),
        }
        await bare_produce(
            kafka, baseline_topics.events, kafka_records(observation_events(kpis, args.events))
        )
        baseline = await bare_consume(
            kafka,
            baseline_topics.events,
            args.events,
            mongo=resources.mongo,
            database=database,
            collection="baseline_events",
        )
        results["baseline_events_per_s"] = baseline.per_s

        group = f"kpi-{database}"
        env = service_env("kpi", resources, topics, database, group=group)
        service = start_service("kpi", env, resources.log_dir, python_args=PROFILE_ARGS)
        admin = AIOKafkaAdminClient(**client_options(kafka))
        await admin.start()
        produced_so_far = 0
        try:
            await asyncio.to_thread(wait_ready, service, 120.0)

            async def measured(count: int, start_day: int) -> float:
                nonlocal produced_so_far
                records = kafka_records(observation_events(kpis, count, start_day=start_day))
                produced = asyncio.create_task(bare_produce(kafka, topics.events, records))
                produced_so_far += count
                window = await wait_for_commits(
                    admin, group, topics.events, produced_so_far, timeout_s=900
                )
                await produced
                return window.rate().per_s

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
            results["kpi_service_peak_rss_mb"] = round(peak_rss_mb(service.process.pid), 1)
        finally:
            await admin.close()
            await asyncio.to_thread(stop_service, service)
    no_history = results["service_events_per_s_no_history"]
    results["ratio_to_baseline"] = no_history / results["baseline_events_per_s"]
    results["per_event_ms_no_history"] = 1000 / no_history
    results["per_event_ms_with_history"] = 1000 / results["service_events_per_s_with_history"]
    return results


def report(results: dict[str, Any]) -> None:
    print(
        f"kpi service benchmark ({results['events']} events over {results['kpis']} KPIs, "
        f"{results['machine']['cpus']} CPUs)"
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
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--kpis", type=int, default=200)
    parser.add_argument("--history", type=int, default=100_000)
    parser.add_argument("--profile", action="store_true", help="profile the service (cProfile)")
    arguments = parser.parse_args()
    if arguments.profile:
        PROFILE_ARGS.extend(["-m", "cProfile", "-o", str(RESULTS / "kpi-service.prof")])
    figures = asyncio.run(main(arguments))
    report(figures)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "kpi.json").write_text(json.dumps(figures, indent=2))

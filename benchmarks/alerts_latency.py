"""Delivery latency of the alerts service: status change → signed webhook at a receiver.

Starts the alerts service as a process on its own topics and database (the local stack's Kafka
and FerretDB), subscribes a real HTTP receiver, then publishes N status changes at a steady rate
straight onto the status topic, as CloudEvents in structured mode exactly as the kpi service
writes them. The changes cycle over a plan-sized set of KPIs (200 by default), each KPI
alternately slipping (a new episode) and recovering, so every change is a notification. Each
change's latency is the receiver's arrival time minus the change's CloudEvents `time`. Prints
p50/p90/p99/max.

    make bench-alerts                      # 600 changes at 10/s over 200 KPIs
    python -m benchmarks.alerts_latency --count 1200 --rate 15

The grouping window is 0 here (each change is sent at once): with the default 30 s window the
latency is the window plus what is measured here.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import secrets
import statistics
import time
from datetime import UTC, date, datetime

import httpx

from benchmarks.common import (
    metric_total,
    percentile,
    scratch,
    service_env,
    services_running,
)
from harness.webhooks import webhook_receiver
from shared.events.contracts import KpiStatusChanged, Status, new_status_event
from shared.events.kafka_binding import encode_structured
from shared.kafka import create_producer


def service_timings(metrics: str) -> dict[str, float]:
    """Mean handler batch time, batch count and mean webhook attempt time from /metrics."""
    batches = metric_total(metrics, "shinchoku_consumer_batch_duration_seconds_count")
    attempts = metric_total(metrics, "shinchoku_alerts_attempt_duration_seconds_count")
    batch_s = metric_total(metrics, "shinchoku_consumer_batch_duration_seconds_sum")
    attempt_s = metric_total(metrics, "shinchoku_alerts_attempt_duration_seconds_sum")
    return {
        "handler_batches": batches,
        "handler_batch_mean_ms": 1000 * batch_s / max(batches, 1),
        "attempt_mean_ms": 1000 * attempt_s / max(attempts, 1),
    }


def status_change(i: int, kpis: int) -> KpiStatusChanged:
    """The i-th change: KPI i mod `kpis`, slipping on even rounds and recovering on odd ones."""
    kpi_id = f"kpi.bench-{i % kpis:04d}"
    round_, slipping = i // kpis, (i // kpis) % 2 == 0
    episode = round_ if slipping else round_ - 1
    return KpiStatusChanged(
        kpi_id=kpi_id,
        kind="kpi",
        measure_id="m.bench",
        ministries=["mic"],
        previous_status=Status.ON_TRACK if slipping else Status.OFF_TRACK,
        status=Status.OFF_TRACK if slipping else Status.ON_TRACK,
        episode_id=f"{kpi_id}:{date.today().isoformat()}#{episode + 1}",
        evaluated_on=date.today(),
        explanation={"rule_id": "kpi.trajectory", "message": "benchmark", "inputs": {"i": i}},
    )


async def run(count: int, rate: float, window_s: float, kpis: int) -> dict[str, float]:
    async with scratch("a") as resources:
        topics = await resources.topic_set("alerts")
        database = resources.database("alerts")
        token = secrets.token_urlsafe(12)
        env = service_env(
            "alerts",
            resources,
            topics,
            database,
            admin_token=token,
            extra={"SHINCHOKU_ALERTS_GROUPING_WINDOW_S": str(window_s)},
        )
        producer = create_producer(resources.kafka, client_suffix="bench")
        try:
            async with (
                services_running([("alerts", env)], resources.log_dir) as (service,),
                webhook_receiver() as receiver,
                httpx.AsyncClient(timeout=20) as http,
            ):
                created = await http.post(
                    f"{service.url}/v1/subscriptions",
                    headers={"Authorization": f"Bearer {token}"},
                    json={
                        "url": receiver.url,
                        "filter": {"measures": ["m.bench"], "kinds": ["slipped", "recovered"]},
                    },
                )
                created.raise_for_status()
                await producer.start()
                interval = 1.0 / rate
                started = time.perf_counter()
                for i in range(count):
                    # Steady rate: wait for this change's slot, not a fixed sleep after each send.
                    delay = started + i * interval - time.perf_counter()
                    if delay > 0:
                        await asyncio.sleep(delay)
                    event = new_status_event(
                        status_change(i, kpis),
                        event_id=f"status:bench:{i}",
                        time=datetime.now(UTC),
                    )
                    record = encode_structured(event)
                    await producer.send(
                        topics.status, value=record.value, key=record.key, headers=record.headers
                    )
                await producer.flush()
                sent_in = time.perf_counter() - started
                try:
                    await receiver.wait_for(count, timeout_s=120 + count / rate)
                except TimeoutError:
                    raise SystemExit(
                        f"only {len(receiver.received)} of {count} webhooks arrived; "
                        f"service log: {service.log_path}"
                    ) from None
                metrics = (await http.get(f"{service.url}/metrics")).text
                latencies = []
                for webhook in receiver.received:
                    body = json.loads(webhook.body)
                    for change in body["data"]["changes"]:
                        changed_at = datetime.fromisoformat(change["changed_at"]).timestamp()
                        latencies.append(webhook.received_at - changed_at)
        finally:
            with contextlib.suppress(Exception):
                await producer.stop()
    return {
        "count": float(len(latencies)),
        "rate_per_s": count / sent_in,
        "p50_ms": percentile(latencies, 50) * 1000,
        "p90_ms": percentile(latencies, 90) * 1000,
        "p99_ms": percentile(latencies, 99) * 1000,
        "max_ms": max(latencies) * 1000,
        "mean_ms": statistics.fmean(latencies) * 1000,
        "deliveries": float(len(receiver.received)),
        **service_timings(metrics),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=600, help="status changes to publish")
    parser.add_argument("--rate", type=float, default=10.0, help="changes per second")
    parser.add_argument("--kpis", type=int, default=200, help="distinct KPIs the changes cycle")
    parser.add_argument("--window", type=float, default=0.0, help="grouping window (s)")
    args = parser.parse_args()
    result = asyncio.run(run(args.count, args.rate, args.window, args.kpis))
    print(
        f"alerts delivery latency, status change → receiver, {int(result['count'])} changes "
        f"over {args.kpis} KPIs at {result['rate_per_s']:.1f}/s "
        f"(grouping window {args.window:g} s): "
        f"p50 {result['p50_ms']:.0f} ms, p90 {result['p90_ms']:.0f} ms, "
        f"p99 {result['p99_ms']:.0f} ms, max {result['max_ms']:.0f} ms, "
        f"mean {result['mean_ms']:.0f} ms ({int(result['deliveries'])} deliveries)"
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()

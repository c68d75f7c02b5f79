"""Offered load for the latency benchmark: batch POSTs of observations to ingest at a fixed rate.

It runs in its own process, so that the process measuring latency (probes, the status-topic
reader, the webhook receiver) is not slowed by generating the load. Open loop: a batch is sent
every tick whether or not earlier ones were answered (at most `--outstanding` in flight; beyond
that the schedule slips and the achieved rate shows it). The ingest key comes from the
environment (BENCH_INGEST_KEY). Prints ``ready`` when it starts sending, then one JSON line.

    python -m benchmarks.load --url http://127.0.0.1:8001 --rate 500 --seconds 30 \
        --kpi-prefix bench --kpis 200 --value 70
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from datetime import UTC, date, datetime
from typing import Any

import httpx


def body(kpi_ids: list[str], first: int, count: int, tag: str, value: float) -> bytes:
    now = datetime.now(UTC).isoformat()
    today = datetime.now(UTC).date().isoformat()
    events = []
    for n in range(first, first + count):
        kpi_id = kpi_ids[n % len(kpi_ids)]
        events.append(
            {
                "specversion": "1.0",
                "id": f"load-{tag}-{n}",
                "source": "/ministries/digital",
                "type": "shinchoku.kpi.observed.v1",
                "subject": kpi_id,
                "time": now,
                "datacontenttype": "application/json",
                "data": {"kpi_id": kpi_id, "value": value, "as_of": today, "note": None},
            }
        )
    return json.dumps(events).encode()


def nearest_rank(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))]


async def offer(args: argparse.Namespace) -> dict[str, Any]:
    kpi_ids = [f"kpi.{args.kpi_prefix}-{i:05d}" for i in range(args.kpis)]
    batch = max(1, min(500, round(args.rate / 10)))
    tick_s = batch / args.rate
    ticks = max(1, round(args.seconds / tick_s))
    headers = {
        "authorization": f"Bearer {os.environ['BENCH_INGEST_KEY']}",
        "content-type": "application/cloudevents-batch+json",
    }
    accepted = refused = failed = 0
    response_s: list[float] = []
    slots = asyncio.Semaphore(args.outstanding)
    limits = httpx.Limits(max_connections=args.outstanding, keepalive_expiry=2)
    async with httpx.AsyncClient(base_url=args.url, timeout=60, limits=limits) as http:

        async def send(content: bytes) -> None:
            nonlocal accepted, refused, failed
            try:
                sent = time.perf_counter()
                answer = await http.post("/v1/events:batch", content=content, headers=headers)
                response_s.append(time.perf_counter() - sent)
                if answer.status_code == 200:
                    counts = answer.json()
                    accepted += counts["accepted"] + counts["duplicates"]
                    refused += batch - counts["accepted"] - counts["duplicates"]
                else:
                    refused += batch
            except httpx.HTTPError:
                failed += batch
            finally:
                slots.release()

        print("ready", flush=True)
        tasks = []
        started = time.perf_counter()
        for tick in range(ticks):
            delay = started + tick * tick_s - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            await slots.acquire()
            content = body(kpi_ids, tick * batch, batch, args.tag, args.value)
            tasks.append(asyncio.create_task(send(content)))
        offered_in = time.perf_counter() - started
        await asyncio.gather(*tasks)
        answered_in = time.perf_counter() - started
    return {
        "offered": ticks * batch,
        "accepted": accepted,
        "refused": refused,
        "failed": failed,
        "batch": batch,
        "seconds": round(offered_in, 3),
        "answered_seconds": round(answered_in, 3),
        # Over the time the load was offered in (answers still arriving after it count).
        "offered_per_s": round(ticks * batch / offered_in, 1),
        "accepted_per_s": round(accepted / offered_in, 1),
        "response_ms_p50": round(1000 * nearest_rank(response_s, 50), 1),
        "response_ms_p99": round(1000 * nearest_rank(response_s, 99), 1),
        "date": date.today().isoformat(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--rate", type=float, required=True, help="events per second")
    parser.add_argument("--seconds", type=float, required=True)
    parser.add_argument("--kpi-prefix", default="bench")
    parser.add_argument("--kpis", type=int, default=200)
    parser.add_argument("--value", type=float, default=70.0)
    parser.add_argument("--tag", default="load")
    parser.add_argument("--outstanding", type=int, default=32)
    args = parser.parse_args(argv)
    print(json.dumps(asyncio.run(offer(args))), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

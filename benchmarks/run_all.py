"""`make bench`: every Shinchoku benchmark in one run, against raw baselines measured in the same
run on the same broker and database; one table printed, all figures in bench-results/bench.json.

Sections (each on its own scratch topics and database; the stack keeps nothing afterwards):

1. baselines: a bare aiokafka producer, a bare consumer (consume only), insert_many into
   FerretDB, and a bare consumer that insert_many's each fetch and commits. Each is measured
   before the services run and again after them (the machine is shared); ratios use the higher.
2. ingest: events/s answered 202 for single POSTs and for batch POSTs.
3. pipeline: the kpi service as a process, events topic → stored state and published status
   changes, read from the consumer group's committed offsets (the service commits a batch only
   after storing it and publishing its status changes).
4. latency: ingest, kpi and alerts as processes under a fixed offered load of observations
   (batch POSTs from a separate process), plus probe observations that each flip a KPI's status
   (slip, recover, ...) for which a webhook subscription exists: ingest accepted → the status
   change read from the status topic → the signed webhook at a real receiver.
5. scale: per-event cost after prefilling kpi_observations with prior observations; with many
   more KPIs; peak RSS of each service.
6. horizontal: two kpi instances in one consumer group against one.

Nothing is asserted; targets are printed beside the figures. `--quick` is a smoke run (~1-2
minutes); `--full` prefills 1,000,000 prior observations instead of 100,000 (it does not fit in
the ten-minute budget on a 2-core machine: FerretDB inserts a few thousand documents per second).

    make bench                          # BENCH_ARGS="--quick" or "--full"
    python -m benchmarks.run_all --sections baselines,ingest
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import secrets
import sys
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from benchmarks.common import (
    RESULTS,
    Document,
    Rate,
    Scratch,
    bare_consume,
    bare_insert_many,
    bare_produce,
    committed_total,
    create_api_key,
    end_offsets_total,
    http_drive,
    http_limits,
    insert_catalogue,
    kafka_records,
    load_average,
    machine,
    metric_total,
    observation_documents,
    observation_event,
    observation_events,
    peak_rss_mb,
    percentile,
    planned_value,
    prefill_observations,
    process_named,
    scratch,
    service_env,
    services_running,
    synthetic_kpis,
    wait_for_commits,
    wait_group_stable,
    wait_until_quiet,
)
from harness.services import RunningService
from harness.webhooks import WebhookReceiver, webhook_receiver
from shared.http.serve import HTTP_OVERRIDE, LOOP_OVERRIDE
from shared.kafka import client_options
from shared.settings import TopicSettings

ROOT = Path(__file__).resolve().parents[1]
SECTIONS = ("baselines", "ingest", "pipeline", "scale", "latency")
# The single-POST run stops taking new requests after this long (a loaded machine is slow).
SINGLE_POSTS_MAX_S = 20.0
TARGETS = {
    "ingest_batch_to_producer": 0.5,
    "pipeline_to_baseline": 0.3,
    "p99_ingest_to_status_ms_at_500": 250.0,
    "per_event_cost_growth": 0.15,
    "peak_rss_mb": 250.0,
}


@dataclass
class Settings:
    events: int = 10_000  # per baseline, ingest batch run and pipeline/horizontal run
    single_events: int = 1_000
    scale_events: int = 20_000  # per scale point
    history: list[int] = field(default_factory=lambda: [0, 10_000, 100_000])
    kpis: int = 200
    kpis_large: int = 20_000
    rates: list[int] = field(default_factory=lambda: [500, 2_000])
    latency_s: float = 20.0
    probes_per_s: float = 2.0
    probe_kpis: int = 40
    # The large-catalogue measurement stops this long after launching its kpi service.
    catalogue_budget_s: float = 150.0
    # How long to wait for FerretDB to go quiet before the last two sections.
    settle_s: float = 15.0
    batch_size: int = 500
    batch_clients: int = 4
    single_clients: int = 32
    sections: list[str] = field(default_factory=lambda: list(SECTIONS))
    mode: str = "default"

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> Settings:
        settings = cls()
        if args.quick:
            settings = cls(
                events=3_000,
                single_events=200,
                catalogue_budget_s=40.0,
                settle_s=3.0,
                scale_events=4_000,
                history=[0, 2_000, 20_000],
                kpis_large=2_000,
                latency_s=8.0,
                probe_kpis=16,
                mode="quick",
            )
        elif args.full:
            settings.history = [0, 10_000, 1_000_000]
            settings.mode = "full"
        overrides = {
            "events": args.events,
            "single_events": args.single_events,
            "scale_events": args.scale_events,
            "kpis_large": args.kpis_large,
            "latency_s": args.latency_seconds,
        }
        for name, value in overrides.items():
            if value is not None:
                setattr(settings, name, value)
        if args.history:
            settings.history = sorted(int(x) for x in args.history.split(","))
        if args.rates:
            settings.rates = [int(x) for x in args.rates.split(",")]
        if args.sections:
            settings.sections = [s for s in args.sections.split(",") if s]
            unknown = set(settings.sections) - set(SECTIONS)
            if unknown:
                raise SystemExit(f"unknown sections {sorted(unknown)}; known: {SECTIONS}")
        return settings


def expected_figures(settings: Settings) -> list[str]:
    """The names of the figures a run with these settings writes (each must be positive)."""
    names: list[str] = []
    if "baselines" in settings.sections:
        for name in ("producer", "consumer", "insert_many", "consumer_insert_many"):
            names += [f"baseline.{name}.{when}" for when in ("before", "after", "used")]
    if "ingest" in settings.sections:
        names += [
            "ingest.single_events_per_s",
            "ingest.batch_events_per_s",
            "memory.ingest_peak_rss_mb",
        ]
        if "baselines" in settings.sections:
            names += ["ingest.batch_to_producer", "ingest.single_to_producer"]
    if "pipeline" in settings.sections:
        names += [
            "pipeline.events_per_s",
            "horizontal.instances_1_events_per_s",
            "horizontal.instances_2_events_per_s",
            "horizontal.two_to_one",
            "memory.kpi_peak_rss_mb",
        ]
        if "baselines" in settings.sections:
            names.append("pipeline.to_baseline")
    if "scale" in settings.sections:
        for prior in settings.history:
            names += [f"scale.prior_{prior}.per_event_ms", f"scale.prior_{prior}.events_per_s"]
        if any(settings.history):
            names += ["scale.prefill_docs_per_s", "scale.prefill_s"]
        names += [
            f"scale.kpis_{settings.kpis}.per_event_ms",
            f"scale.kpis_{settings.kpis_large}.per_event_ms",
            "memory.kpi_large_catalogue_peak_rss_mb",
        ]
    if "latency" in settings.sections:
        for rate in settings.rates:
            for path in ("ingest_to_status_ms", "ingest_to_webhook_ms"):
                names += [f"latency.{rate}.{path}.{q}" for q in ("p50", "p95", "p99")]
            names += [
                f"latency.{rate}.probe_accept_ms.p50",
                f"latency.{rate}.probe_accept_ms.p99",
                f"latency.{rate}.load_accepted_per_s",
                f"latency.{rate}.kpi_events_per_s",
            ]
        names += [
            "memory.latency_ingest_peak_rss_mb",
            "memory.latency_kpi_peak_rss_mb",
            "memory.latency_alerts_peak_rss_mb",
        ]
    return names


class Bench:
    """One run: its scratch resources, settings, figures and the table rows."""

    def __init__(self, resources: Scratch, settings: Settings) -> None:
        self.r = resources
        self.s = settings
        self.kpis = synthetic_kpis(settings.kpis)
        self.figures: dict[str, float] = {}
        self.details: dict[str, Any] = {}
        self.notes: list[str] = []
        self.rows: list[tuple[str, str, str, str]] = []
        self.started = time.perf_counter()
        self._admin: AIOKafkaAdminClient | None = None

    # -- helpers ------------------------------------------------------------------------------

    def figure(self, name: str, value: float, digits: int = 1) -> float:
        self.figures[name] = round(value, digits)
        return value

    def peak(self, name: str, value: float) -> None:
        """Keep the highest value seen under this name."""
        self.figure(name, max(self.figures.get(name, 0.0), value))

    def row(self, section: str, what: str, value: str, note: str = "") -> None:
        self.rows.append((section, what, value, note))

    def say(self, message: str) -> None:
        elapsed = time.perf_counter() - self.started
        print(f"[bench {elapsed:6.1f}s] {message}", flush=True)

    @property
    def admin(self) -> AIOKafkaAdminClient:
        assert self._admin is not None
        return self._admin

    @contextlib.asynccontextmanager
    async def opened(self) -> AsyncIterator[Bench]:
        self._admin = AIOKafkaAdminClient(**client_options(self.r.kafka))
        await self._admin.start()
        try:
            yield self
        finally:
            await self._admin.close()

    async def settle(self, before: str, timeout_s: float) -> None:
        """Give FerretDB a moment to finish what an earlier section left running (a stopped
        client's statement runs to its end); other users of the stack may keep it busy."""
        waited = await wait_until_quiet(process_named("ferretdb"), timeout_s=timeout_s)
        self.details.setdefault("ferretdb_quiet_wait_s", {})[before] = waited
        if waited is None:
            self.notes.append(
                f"FerretDB was still busy after {timeout_s:.0f} s of waiting before {before} "
                "(other users of the stack, or an earlier section's statement)"
            )

    async def catalogue_database(self, name: str, kpis: list[Document] | None = None) -> str:
        database = self.r.database(name)
        await insert_catalogue(self.r.mongo, database, kpis or self.kpis)
        return database

    # -- 1. baselines --------------------------------------------------------------------------

    async def baselines(self, when: str) -> dict[str, Rate]:
        n = self.s.events
        self.say(f"baselines ({when}): {n} records/documents each")
        topics = await self.r.topic_set(f"bare-{when}")
        database = self.r.database(f"bare_{when}")
        records = kafka_records(observation_events(self.kpis, n, tag=f"bare-{when}"))
        docs = await asyncio.to_thread(observation_documents, self.kpis, 0, n)
        results = {
            "producer": await bare_produce(
                self.r.kafka,
                topics.events,
                records,
                batch_size=self.s.batch_size,
                in_flight=self.s.batch_clients,
            ),
            "consumer": await bare_consume(self.r.kafka, topics.events, n),
            "insert_many": await bare_insert_many(self.r.mongo, database, "inserted", docs),
            "consumer_insert_many": await bare_consume(
                self.r.kafka,
                topics.events,
                n,
                mongo=self.r.mongo,
                database=database,
                collection="consumed",
            ),
        }
        await self.r.drop_database(database)
        for name, rate in results.items():
            self.figure(f"baseline.{name}.{when}", rate.per_s)
        return results

    def report_baselines(self) -> None:
        labels = {
            "producer": ("bare aiokafka producer (500/batch, 4 in flight)", "events/s"),
            "consumer": ("bare consumer, consume only", "events/s"),
            "insert_many": ("insert_many into FerretDB (2,000/call)", "docs/s"),
            "consumer_insert_many": ("bare consumer + insert_many + commit", "events/s"),
        }
        for name, (label, unit) in labels.items():
            before = self.figures[f"baseline.{name}.before"]
            after = self.figures[f"baseline.{name}.after"]
            self.figure(f"baseline.{name}.used", max(before, after))
            self.row(
                "baseline",
                label,
                f"{before:,.0f} / {after:,.0f} → {max(before, after):,.0f} {unit}",
                "before / after the services → used (the higher)",
            )

    def baseline(self, name: str) -> float | None:
        return self.figures.get(f"baseline.{name}.used")

    # -- 2. ingest -----------------------------------------------------------------------------

    async def ingest(self) -> None:
        s = self.s
        topics = await self.r.topic_set("ingest")
        database = await self.catalogue_database("ingest")
        key = await create_api_key(self.r.mongo, database)
        # The same measurement on plain asyncio + h11 first (what uvicorn without [standard]
        # serves on), then on the default uvloop + httptools: the server's share of the cost.
        self.say(f"ingest on asyncio + h11: {s.single_events} single POSTs, {s.events} batched")
        plain = await self.ingest_once(
            "plain", topics, database, key, {LOOP_OVERRIDE: "asyncio", HTTP_OVERRIDE: "h11"}
        )
        self.say(f"ingest: {s.single_events} single POSTs, {s.events} events in batch POSTs")
        single, batch, failures, rss = await self.ingest_once("default", topics, database, key, {})
        for failure in (plain[2] + failures)[:3]:
            self.notes.append(f"ingest: a request was not accepted: {failure}")
        self.figure("ingest.asyncio_h11.single_events_per_s", plain[0].per_s)
        self.figure("ingest.asyncio_h11.batch_events_per_s", plain[1].per_s)
        self.figure("ingest.single_events_per_s", single.per_s)
        self.figure("ingest.batch_events_per_s", batch.per_s)
        self.figure("memory.ingest_peak_rss_mb", rss)
        self.details["ingest"] = {
            "single": asdict(single),
            "batch": asdict(batch),
            "asyncio_h11": {"single": asdict(plain[0]), "batch": asdict(plain[1])},
            "not_accepted": len(failures) + len(plain[2]),
        }
        await self.r.drop_database(database)

    async def ingest_once(
        self, tag: str, topics: TopicSettings, database: str, key: str, extra: dict[str, str]
    ) -> tuple[Rate, Rate, list[str], float]:
        """Single then batch POSTs against one ingest process started with `extra` settings."""
        s = self.s
        auth = {"authorization": f"Bearer {key}"}
        single_headers = {**auth, "content-type": "application/cloudevents+json"}
        batch_headers = {**auth, "content-type": "application/cloudevents-batch+json"}
        env = service_env("ingest", self.r, topics, database, extra=extra)
        async with (
            services_running([("ingest", env)], self.r.log_dir) as (service,),
            httpx.AsyncClient(
                base_url=service.url, timeout=120, limits=http_limits(s.single_clients)
            ) as http,
        ):
            warm = observation_events(self.kpis, 200, tag=f"{tag}-warm")
            await http_drive(
                http,
                "/v1/events:batch",
                [json.dumps(warm[i : i + 100]).encode() for i in range(0, 200, 100)],
                batch_headers,
                2,
                100,
            )
            singles = observation_events(self.kpis, s.single_events, tag=f"{tag}-single")
            single, failures = await http_drive(
                http,
                "/v1/events",
                [json.dumps(e).encode() for e in singles],
                single_headers,
                s.single_clients,
                1,
                max_seconds=SINGLE_POSTS_MAX_S,
            )
            batched = observation_events(self.kpis, s.events, tag=f"{tag}-batch")
            bodies = [
                json.dumps(batched[i : i + s.batch_size]).encode()
                for i in range(0, len(batched), s.batch_size)
            ]
            batch, batch_failures = await http_drive(
                http, "/v1/events:batch", bodies, batch_headers, s.batch_clients, s.batch_size
            )
            rss = peak_rss_mb(service.process.pid)
        return single, batch, [*failures, *batch_failures], rss

    def report_ingest(self) -> None:
        s = self.s
        single = self.figures["ingest.single_events_per_s"]
        batch = self.figures["ingest.batch_events_per_s"]
        producer = self.baseline("producer")
        single_note = batch_note = "no baseline in this run"
        if producer:
            single_ratio = self.figure("ingest.single_to_producer", single / producer, 3)
            batch_ratio = self.figure("ingest.batch_to_producer", batch / producer, 3)
            single_note = f"{single_ratio:.3f} of the bare producer"
            batch_note = (
                f"{batch_ratio:.2f} of the bare producer "
                f"{verdict(batch_ratio >= TARGETS['ingest_batch_to_producer'])} target >= 0.5"
            )
        self.row(
            "ingest",
            f"single POSTs ({s.single_clients} clients)",
            f"{single:,.0f} events/s",
            single_note,
        )
        self.row(
            "ingest",
            f"batch POSTs ({s.batch_size}/request, {s.batch_clients} clients)",
            f"{batch:,.0f} events/s",
            batch_note,
        )
        plain_single = self.figures["ingest.asyncio_h11.single_events_per_s"]
        plain_batch = self.figures["ingest.asyncio_h11.batch_events_per_s"]
        self.row(
            "ingest",
            "same, served on asyncio + h11 (single / batch)",
            f"{plain_single:,.0f} / {plain_batch:,.0f} events/s",
            f"uvloop + httptools: x{single / plain_single:.2f} single, "
            f"x{batch / plain_batch:.2f} batch"
            if plain_single and plain_batch
            else "",
        )

    # -- 3 and 6. pipeline, horizontal -------------------------------------------------------

    async def kpi_throughput(self, name: str, instances: int, events: list[Document]) -> Rate:
        """`instances` kpi services in one group on fresh topics and database; the events are
        produced once the group is Stable; events/s from the committed offsets."""
        topics = await self.r.topic_set(name)
        database = await self.catalogue_database(name)
        group = f"kpi-{database}"
        env = service_env("kpi", self.r, topics, database, group=group)
        records = kafka_records(events)
        async with services_running([("kpi", env)] * instances, self.r.log_dir) as services:
            await wait_group_stable(self.admin, group, instances)
            producing = asyncio.create_task(bare_produce(self.r.kafka, topics.events, records))
            window = await wait_for_commits(
                self.admin, group, topics.events, len(records), timeout_s=900
            )
            await producing
            for service in services:
                self.peak("memory.kpi_peak_rss_mb", peak_rss_mb(service.process.pid))
        await self.r.drop_database(database)
        return window.rate()

    async def pipeline(self) -> None:
        n = self.s.events
        events = observation_events(self.kpis, n, tag="pipeline")
        self.say(f"pipeline: one kpi service, {n} events over {len(self.kpis)} KPIs")
        one = await self.kpi_throughput("pipe1", 1, events)
        self.say(f"horizontal: two kpi services in one group, {n} events")
        two = await self.kpi_throughput("pipe2", 2, events)
        self.figure("pipeline.events_per_s", one.per_s)
        self.figure("horizontal.instances_1_events_per_s", one.per_s)
        self.figure("horizontal.instances_2_events_per_s", two.per_s)
        self.figure("horizontal.two_to_one", two.per_s / one.per_s, 3)
        self.details["pipeline"] = {"one": asdict(one), "two": asdict(two)}

    def report_pipeline(self) -> None:
        rate = self.figures["pipeline.events_per_s"]
        baseline = self.baseline("consumer_insert_many")
        note = "no baseline in this run"
        if baseline:
            ratio = self.figure("pipeline.to_baseline", rate / baseline, 3)
            note = (
                f"{ratio:.2f} of consumer + insert_many "
                f"{verdict(ratio >= TARGETS['pipeline_to_baseline'])} target >= 0.3"
            )
        self.row(
            "pipeline",
            "kpi service: events topic → stored status",
            f"{rate:,.0f} events/s",
            note,
        )

    def report_horizontal(self) -> None:
        one = self.figures["horizontal.instances_1_events_per_s"]
        two = self.figures["horizontal.instances_2_events_per_s"]
        ratio = self.figures["horizontal.two_to_one"]
        if ratio > 1.05:
            reading = "two beat one"
        elif ratio >= 0.95:
            reading = "no gain: "
        else:
            reading = "two are slower: "
        if ratio <= 1.05:
            reading += f"{os.cpu_count()} cores and one FerretDB (and its storage) shared by both"
        self.row(
            "horizontal",
            "kpi instances in one group (6 partitions): 1 → 2",
            f"{one:,.0f} → {two:,.0f} events/s",
            f"x{ratio:.2f}; {reading}",
        )

    # -- 5. scale ------------------------------------------------------------------------------

    async def scale_history(self) -> None:
        """For each point: a fresh database whose kpi_observations is prefilled with that many
        prior observations (inserted directly), a fresh kpi service, and the same
        `scale_events` records, produced once, read from the start by each point's own group:
        every point processes identical input in identical batches."""
        s = self.s
        topics = await self.r.topic_set("history")
        records = kafka_records(observation_events(self.kpis, s.scale_events, tag="history"))
        await bare_produce(self.r.kafka, topics.events, records)
        prefill_total = Rate(0, 0.0)
        points: dict[str, Any] = {}
        for prior in s.history:
            database = await self.catalogue_database(f"history_{prior}")
            if prior:
                self.say(f"scale: prefilling kpi_observations with {prior:,} documents")
                rate = await prefill_observations(self.r.mongo, database, self.kpis, 0, prior)
                prefill_total = Rate(
                    prefill_total.count + rate.count, prefill_total.seconds + rate.seconds
                )
            self.say(f"scale: {s.scale_events} events with {prior:,} prior observations")
            group = f"kpi-{database}"
            env = service_env("kpi", self.r, topics, database, group=group)
            async with services_running([("kpi", env)], self.r.log_dir) as (service,):
                window = await wait_for_commits(
                    self.admin, group, topics.events, len(records), timeout_s=900
                )
                self.peak("memory.kpi_peak_rss_mb", peak_rss_mb(service.process.pid))
            rate = window.rate()
            points[str(prior)] = {"prior_observations": prior, **asdict(rate)}
            self.figure(f"scale.prior_{prior}.events_per_s", rate.per_s)
            self.figure(f"scale.prior_{prior}.per_event_ms", 1000 / rate.per_s, 3)
            await self.r.drop_database(database)
        self.figure("scale.prefill_docs_per_s", prefill_total.per_s)
        self.figure("scale.prefill_s", prefill_total.seconds)
        self.details["scale_history"] = points

    async def scale_catalogue(self) -> None:
        """The same number of events over a catalogue of `kpis_large` KPIs (each batch touches
        that many more states). Bounded by `catalogue_budget_s` from the service's launch: what
        was committed by then is reported, and the cost is a lower bound if not all was."""
        s = self.s
        self.say(
            f"scale: {s.scale_events} events over {s.kpis_large:,} KPIs "
            f"(at most {s.catalogue_budget_s:.0f} s)"
        )
        large = synthetic_kpis(s.kpis_large, prefix="large")
        topics = await self.r.topic_set("catalogue")
        database = await self.catalogue_database("catalogue", large)
        group = f"kpi-{database}"
        env = service_env("kpi", self.r, topics, database, group=group)
        records = kafka_records(observation_events(large, s.scale_events, tag="large"))
        await bare_produce(self.r.kafka, topics.events, records)
        launched = time.perf_counter()
        swept: list[float] = []

        async def watch_sweep() -> None:
            # The start-up sweep publishes every KPI's first status (no_data) as it ends.
            while True:
                published = await end_offsets_total(self.r.kafka, topics.status, topics.partitions)
                if published >= len(large):
                    swept.append(time.perf_counter())
                    return
                await asyncio.sleep(0.5)

        watcher = asyncio.create_task(watch_sweep())
        async with services_running([("kpi", env)], self.r.log_dir) as (service,):
            ready = time.perf_counter()
            window = await wait_for_commits(
                self.admin,
                group,
                topics.events,
                len(records),
                timeout_s=max(s.catalogue_budget_s - (ready - launched), 10.0),
                partial=True,
            )
            rss = peak_rss_mb(service.process.pid)
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher
        rate = window.rate()
        if rate.count == 0:  # nothing stored within the budget: the cost is at least this
            rate = Rate(len(records), window.last_at - ready)
        self.figure(f"scale.kpis_{s.kpis_large}.per_event_ms", 1000 / rate.per_s, 3)
        self.figure(f"scale.kpis_{s.kpis_large}.events_per_s", rate.per_s)
        small = self.figures[f"scale.prior_{s.history[0]}.per_event_ms"]
        self.figure(f"scale.kpis_{s.kpis}.per_event_ms", small, 3)
        self.figure("memory.kpi_large_catalogue_peak_rss_mb", rss)
        self.details["scale_catalogue"] = {
            **asdict(rate),
            "complete": window.complete,
            "committed": window.last_count,
            "events": len(records),
            "ready_s": round(ready - launched, 1),
            "first_statuses_published_after_ready_s": (
                round(swept[0] - ready, 1) if swept else None
            ),
            "first_commit_after_ready_s": (
                round(window.first_at - ready, 1) if window.first_at is not None else None
            ),
        }
        await self.r.drop_database(database)

    def report_scale(self) -> None:
        s = self.s
        base = self.figures[f"scale.prior_{s.history[0]}.per_event_ms"]
        worst = 0.0
        for point, prior in enumerate(s.history):
            cost = self.figures[f"scale.prior_{prior}.per_event_ms"]
            change = cost / base - 1
            worst = max(worst, abs(change))
            note = "" if point == 0 else f"{change:+.0%} vs {s.history[0]:,} prior"
            self.row(
                "scale",
                f"per-event cost, {prior:,} prior observations",
                f"{cost:.3f} ms ({1000 / cost:,.0f} events/s)",
                note,
            )
        flat = worst <= TARGETS["per_event_cost_growth"]
        largest = s.history[-1]
        self.figure("scale.per_event_cost_max_change", worst, 3)
        note = f"{verdict(flat)} target within 15%"
        if largest < 1_000_000:
            note += f" up to {largest:,}; the target runs to 1,000,000: not measured (`--full`)"
        self.row(
            "scale",
            f"per-event cost flat from {s.history[0]:,} to {largest:,}",
            f"max change {worst:.0%}",
            note,
        )
        self.row(
            "scale",
            f"prefill: {sum(s.history):,} documents into kpi_observations "
            f"(insert_many, {10_000:,}/call)",
            f"{self.figures['scale.prefill_s']:.0f} s",
            f"{self.figures['scale.prefill_docs_per_s']:,.0f} docs/s",
        )
        small = self.figures[f"scale.kpis_{s.kpis}.per_event_ms"]
        large = self.figures[f"scale.kpis_{s.kpis_large}.per_event_ms"]
        d = self.details["scale_catalogue"]
        note = f"x{large / small:.2f} ({s.scale_events:,} events each)"
        bound = ""
        if not d["complete"]:
            bound = ">= "
            note = (
                f"x{large / small:.1f} at least: only {d['committed']:,} of {d['events']:,} "
                f"events stored within {s.catalogue_budget_s:.0f} s"
            )
        sweep = d["first_statuses_published_after_ready_s"]
        note += f"; a first status for each of the {s.kpis_large:,} KPIs " + (
            f"published {sweep:.0f} s after ready (start-up sweep)"
            if sweep is not None
            else "not yet published"
        )
        self.row(
            "scale",
            f"per-event cost, {s.kpis:,} KPIs → {s.kpis_large:,} KPIs",
            f"{small:.3f} → {bound}{large:.3f} ms",
            note,
        )

    # -- 4. latency ----------------------------------------------------------------------------

    async def latency(self) -> None:
        s = self.s
        topics = await self.r.topic_set("latency")
        probes = synthetic_kpis(s.probe_kpis, prefix="probe", measures=1, measure_prefix="m.probe")
        # Each service on its own database, as deployed: the catalogue copied into ingest's and
        # kpi's (what `shinchoku catalogue load` does), the API key in ingest's.
        databases = {
            "ingest": await self.catalogue_database("latency_ingest", self.kpis + probes),
            "kpi": await self.catalogue_database("latency_kpi", self.kpis + probes),
            "alerts": self.r.database("latency_alerts"),
        }
        key = await create_api_key(self.r.mongo, databases["ingest"])
        token = secrets.token_urlsafe(16)
        specs = [
            (
                "ingest",
                service_env("ingest", self.r, topics, databases["ingest"], admin_token=token),
            ),
            ("kpi", service_env("kpi", self.r, topics, databases["kpi"], admin_token=token)),
            (
                "alerts",
                service_env(
                    "alerts",
                    self.r,
                    topics,
                    databases["alerts"],
                    admin_token=token,
                    extra={"SHINCHOKU_ALERTS_GROUPING_WINDOW_S": "0"},
                ),
            ),
        ]
        groups = {name: env[f"SHINCHOKU_{name.upper()}_CONSUMER_GROUP"] for name, env in specs[1:]}
        self.say(f"latency: starting ingest, kpi and alerts ({len(probes)} probe KPIs)")
        async with (
            services_running(specs, self.r.log_dir) as services,
            webhook_receiver() as receiver,
            StatusReader(self.r.kafka, topics.status, topics.partitions) as reader,
            httpx.AsyncClient(timeout=60) as http,
        ):
            ingest, kpi, alerts = services
            created = await http.post(
                f"{alerts.url}/v1/subscriptions",
                headers={"authorization": f"Bearer {token}"},
                json={
                    "url": receiver.url,
                    "filter": {
                        "kpis": [p["id"] for p in probes],
                        "kinds": ["slipped", "recovered"],
                    },
                },
            )
            created.raise_for_status()
            run = LatencyRun(self, ingest, kpi, key, probes, reader, receiver, http, topics, groups)
            for number, rate in enumerate(s.rates, start=1):
                await run.at(rate, last=number == len(s.rates))
            for service in services:
                rss = peak_rss_mb(service.process.pid)
                self.figure(f"memory.latency_{service.name}_peak_rss_mb", rss)
        for database in databases.values():
            await self.r.drop_database(database)

    def report_latency(self) -> None:
        for rate in self.s.rates:
            d = self.details["latency"][str(rate)]

            def quantiles(path: str, rate: int = rate) -> str:
                values = [self.figures[f"latency.{rate}.{path}.p{q}"] for q in (50, 95, 99)]
                return " / ".join(f"{v:,.0f}" for v in values) + " ms"

            accept = [self.figures[f"latency.{rate}.probe_accept_ms.p{q}"] for q in (50, 99)]
            self.row(
                "latency",
                f"{rate:,}/s offered: probe POST → 202 (ingest's answer)",
                " / ".join(f"{v:,.0f}" for v in accept) + " ms",
                "p50 / p99; the latencies below start at the 202",
            )
            for path, label, missing in (
                ("ingest_to_status_ms", "status topic", d["status_missing"]),
                ("ingest_to_webhook_ms", "webhook received", d["webhook_missing"]),
            ):
                note = f"p50 / p95 / p99 of {d['probes_accepted']} probes"
                value = quantiles(path)
                if missing:
                    value = ">= " + value
                    note += f", {missing} still pending when waiting stopped (lower bounds)"
                if rate == 500 and path == "ingest_to_status_ms":
                    p99 = self.figures[f"latency.{rate}.{path}.p99"]
                    met = p99 < TARGETS["p99_ingest_to_status_ms_at_500"]
                    note += f"; {verdict(met)} target p99 < 250 ms"
                self.row("latency", f"{rate:,}/s offered: ingest accepted → {label}", value, note)
            accepted = self.figures[f"latency.{rate}.load_accepted_per_s"]
            processed = self.figures[f"latency.{rate}.kpi_events_per_s"]
            self.row(
                "latency",
                f"{rate:,}/s offered: load accepted / kpi processed",
                f"{accepted:,.0f} / {processed:,.0f} events/s",
                d["verdict"],
            )

    def report_memory(self) -> None:
        limit = TARGETS["peak_rss_mb"]
        services = {
            "ingest": ["memory.ingest_peak_rss_mb", "memory.latency_ingest_peak_rss_mb"],
            "kpi": ["memory.kpi_peak_rss_mb", "memory.latency_kpi_peak_rss_mb"],
            "alerts": ["memory.latency_alerts_peak_rss_mb"],
            f"kpi, {self.s.kpis_large:,} KPIs": ["memory.kpi_large_catalogue_peak_rss_mb"],
        }
        for name, keys in services.items():
            values = [self.figures[k] for k in keys if k in self.figures]
            if values:
                peak = max(values)
                self.row(
                    "memory",
                    f"peak RSS (VmHWM) of {name} under load",
                    f"{peak:,.0f} MB",
                    f"{verdict(peak < limit)} target < 250 MB",
                )


@dataclass
class Probe:
    index: int
    kpi_id: str
    event_id: str
    slip: bool
    sent: float = 0.0
    accepted: float | None = None
    status_at: float | None = None
    webhook_at: float | None = None


class StatusReader:
    """Reads the status topic from its end as of start-up, noting when each status change whose
    latest evidence is a known probe event arrives."""

    def __init__(self, kafka: Any, topic: str, partitions: int) -> None:
        self._consumer = AIOKafkaConsumer(
            **client_options(kafka), group_id=None, enable_auto_commit=False
        )
        self._partitions = [TopicPartition(topic, p) for p in range(partitions)]
        self.arrivals: dict[str, float] = {}
        self.records = 0
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> StatusReader:
        await self._consumer.start()
        self._consumer.assign(self._partitions)
        await self._consumer.seek_to_end(*self._partitions)
        self._task = asyncio.create_task(self._read())
        return self

    async def __aexit__(self, *_: object) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._consumer.stop()

    async def _read(self) -> None:
        while True:
            batches = await self._consumer.getmany(timeout_ms=200)
            now = time.time()
            for records in batches.values():
                for record in records:
                    self.records += 1
                    event_id = latest_evidence(json.loads(record.value).get("data", {}))
                    if event_id is not None:
                        self.arrivals.setdefault(event_id, now)


def latest_evidence(change: dict[str, Any]) -> str | None:
    """The id of the latest observation behind a status change (its last evidence)."""
    evidence = (change.get("explanation") or {}).get("evidence") or []
    return str(evidence[-1]) if evidence else None


class LatencyRun:
    """Offered load from a separate process, probes from this one, for each rate."""

    def __init__(
        self,
        bench: Bench,
        ingest: RunningService,
        kpi: RunningService,
        key: str,
        probe_kpis: list[Document],
        reader: StatusReader,
        receiver: WebhookReceiver,
        http: httpx.AsyncClient,
        topics: Any,
        groups: dict[str, str],
    ) -> None:
        self.b = bench
        self.ingest = ingest
        self.kpi = kpi
        self.key = key
        self.probe_kpis = [p["id"] for p in probe_kpis]
        self.reader = reader
        self.receiver = receiver
        self.http = http
        self.topics = topics
        self.groups = groups
        self.sent_per_kpi: dict[str, int] = {}
        # Well ahead of the plan (on track), below the final target (not achieved).
        today = datetime.now(UTC).date()
        self.good_value = round(min(planned_value(today) + 15, 85.0), 1)
        self.bad_value = 10.0
        self.load_value = round(min(planned_value(today) + 10, 84.0), 1)

    async def at(self, rate: int, *, last: bool) -> None:
        b, s = self.b, self.b.s
        b.say(f"latency: {rate}/s offered for {s.latency_s:.0f} s, {s.probes_per_s:g} probes/s")
        load = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "benchmarks.load",
            "--url",
            self.ingest.url,
            "--rate",
            str(rate),
            "--seconds",
            str(s.latency_s),
            "--kpis",
            str(s.kpis),
            "--value",
            str(self.load_value),
            "--tag",
            f"{rate}-{secrets.token_hex(3)}",
            cwd=ROOT,
            env={**os.environ, "BENCH_INGEST_KEY": self.key},
            stdout=asyncio.subprocess.PIPE,
        )
        assert load.stdout is not None
        ready = await asyncio.wait_for(load.stdout.readline(), 120)
        if ready.strip() != b"ready":
            raise RuntimeError(f"load generator did not start: {ready!r}")
        kpi_group = self.groups["kpi"]
        committed_before = await committed_total(b.admin, kpi_group, self.topics.events)
        batches_before = await self.kpi_batches()
        window_start = time.perf_counter()
        probes = await self.probe(rate, s.latency_s)
        summary = json.loads((await load.stdout.read()).decode().strip().splitlines()[-1])
        await load.wait()
        committed_after = await committed_total(b.admin, kpi_group, self.topics.events)
        window = time.perf_counter() - window_start
        batches = [
            after - before
            for after, before in zip(await self.kpi_batches(), batches_before, strict=True)
        ]
        produced = await end_offsets_total(b.r.kafka, self.topics.events, self.topics.partitions)
        backlog = produced - committed_after
        kpi_rate = (committed_after - committed_before) / window
        b.say(f"latency: load done, kpi backlog {backlog} events; waiting for the probes")
        drain_s = min(max(30.0, 2 * s.latency_s), 60.0)
        gave_up_at = await self.drain(probes, drain_s)
        self.record(rate, probes, summary, kpi_rate, backlog, gave_up_at, batches)
        if not last:
            await self.catch_up(drain_s)

    async def kpi_batches(self) -> tuple[float, float, float]:
        """The kpi service's handler batches so far: (count, seconds, events processed)."""
        text = (await self.http.get(f"{self.kpi.url}/metrics")).text
        # The kpi service's /metrics: its consumer series are all service="kpi".
        prefix = "shinchoku_consumer_"
        return (
            metric_total(text, f"{prefix}batch_duration_seconds_count"),
            metric_total(text, f"{prefix}batch_duration_seconds_sum"),
            metric_total(text, f"{prefix}events_total", containing='outcome="processed"'),
        )

    async def probe(self, rate: int, seconds: float) -> list[Probe]:
        """A probe observation every 1/probes_per_s seconds, each flipping its KPI's status."""
        s = self.b.s
        count = max(1, round(seconds * s.probes_per_s))
        probes: list[Probe] = []
        tasks = []
        headers = {
            "authorization": f"Bearer {self.key}",
            "content-type": "application/cloudevents+json",
        }
        started = time.perf_counter()
        for i in range(count):
            delay = started + i / s.probes_per_s - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            kpi_id = self.probe_kpis[i % len(self.probe_kpis)]
            sent = self.sent_per_kpi.get(kpi_id, 0)
            self.sent_per_kpi[kpi_id] = sent + 1
            slip = sent % 2 == 0
            probe = Probe(i, kpi_id, f"probe-{rate}-{i}-{secrets.token_hex(3)}", slip)
            probes.append(probe)
            tasks.append(asyncio.create_task(self.send(probe, headers)))
        await asyncio.gather(*tasks)
        return probes

    async def send(self, probe: Probe, headers: dict[str, str]) -> None:
        value = self.bad_value if probe.slip else self.good_value
        event = observation_event(
            probe.kpi_id, probe.event_id, value, datetime.now(UTC).date(), datetime.now(UTC)
        )
        probe.sent = time.time()
        answer = await self.http.post(
            f"{self.ingest.url}/v1/events", content=json.dumps(event), headers=headers
        )
        if answer.status_code == 202:
            probe.accepted = time.time()
        else:
            self.b.notes.append(f"probe {probe.event_id}: {answer.status_code} {answer.text[:120]}")

    def webhook_arrivals(self) -> dict[str, float]:
        arrivals: dict[str, float] = {}
        for webhook in self.receiver.received:
            body = json.loads(webhook.body)
            for change in body.get("data", {}).get("changes", []):
                event_id = latest_evidence(change)
                if event_id is not None:
                    arrivals.setdefault(event_id, webhook.received_at)
        return arrivals

    async def drain(self, probes: list[Probe], timeout_s: float) -> float:
        """Until every accepted probe's status change and webhook arrived, or the timeout;
        returns when it stopped waiting (wall clock)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            webhooks = self.webhook_arrivals()
            waiting = [
                p
                for p in probes
                if p.accepted is not None
                and (p.event_id not in self.reader.arrivals or p.event_id not in webhooks)
            ]
            if not waiting:
                break
            await asyncio.sleep(0.25)
        webhooks = self.webhook_arrivals()
        for p in probes:
            p.status_at = self.reader.arrivals.get(p.event_id)
            p.webhook_at = webhooks.get(p.event_id)
        return time.time()

    async def catch_up(self, timeout_s: float) -> None:
        """Until kpi and alerts have committed everything on their topics (the next rate starts
        from an empty pipeline), or the timeout."""
        b = self.b
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            events = await end_offsets_total(b.r.kafka, self.topics.events, self.topics.partitions)
            status = await end_offsets_total(b.r.kafka, self.topics.status, self.topics.partitions)
            kpi = await committed_total(b.admin, self.groups["kpi"], self.topics.events)
            alerts = await committed_total(b.admin, self.groups["alerts"], self.topics.status)
            if kpi >= events and alerts >= status:
                return
            await asyncio.sleep(0.5)
        b.notes.append(f"latency: the pipeline had not caught up {timeout_s:.0f} s after a rate")

    def record(
        self,
        rate: int,
        probes: list[Probe],
        load: dict[str, Any],
        kpi_rate: float,
        backlog: int,
        gave_up_at: float,
        batches: list[float],
    ) -> None:
        """Percentiles over every accepted probe; a probe whose status change (or webhook) had
        not arrived when waiting stopped counts with the time waited, so the percentiles are
        then lower bounds (marked ">=" in the table)."""
        b = self.b
        accepted = [(p, p.accepted) for p in probes if p.accepted is not None]
        outcome: dict[str, Any] = {}
        for name, attribute in (
            ("ingest_to_status_ms", "status_at"),
            ("ingest_to_webhook_ms", "webhook_at"),
        ):
            arrivals: list[float | None] = [getattr(p, attribute) for p, _ in accepted]
            latencies = [
                1000 * ((arrived or gave_up_at) - at)
                for (_, at), arrived in zip(accepted, arrivals, strict=True)
            ]
            for q in (50, 95, 99):
                b.figure(f"latency.{rate}.{name}.p{q}", percentile(latencies or [0.0], q))
            outcome[name] = latencies
            outcome[f"{name}_missing"] = arrivals.count(None)
        accept_ms = [1000 * (at - p.sent) for p, at in accepted] or [0.0]
        b.figure(f"latency.{rate}.probe_accept_ms.p50", percentile(accept_ms, 50))
        b.figure(f"latency.{rate}.probe_accept_ms.p99", percentile(accept_ms, 99))
        b.figure(f"latency.{rate}.load_accepted_per_s", load["accepted_per_s"])
        b.figure(f"latency.{rate}.kpi_events_per_s", kpi_rate)
        to_status = outcome["ingest_to_status_ms"] or [0.0]
        third = max(1, len(to_status) // 3)
        early, late = percentile(to_status[:third], 50), percentile(to_status[-third:], 50)
        missing = outcome["ingest_to_status_ms_missing"]
        sustained = (
            backlog <= rate
            and load["accepted_per_s"] >= 0.95 * rate
            and len(accepted) == len(probes)
            and not missing
        )
        if sustained:
            verdict_text = f"sustained (kpi backlog at the end of the load: {backlog:,} events)"
        else:
            verdict_text = (
                f"NOT sustained: kpi backlog {backlog:,} events at the end of the load; "
                f"ingest→status p50 {early:,.0f} ms over the first third of the probes, "
                f"{late:,.0f} ms over the last third"
            )
            if missing:
                verdict_text += f"; {missing} probes' status changes still pending"
        count, seconds, events = batches
        if count:
            verdict_text += (
                f"; kpi handler batches during the load: {count:,.0f}, "
                f"mean {events / count:,.0f} events and {1000 * seconds / count:,.0f} ms"
            )
        b.details.setdefault("latency", {})[str(rate)] = {
            "probes": len(probes),
            "probes_accepted": len(accepted),
            "status_missing": missing,
            "webhook_missing": outcome["ingest_to_webhook_ms_missing"],
            "load": load,
            "kpi_backlog_at_end_of_load": backlog,
            "ingest_to_status_p50_first_third_ms": round(early, 1),
            "ingest_to_status_p50_last_third_ms": round(late, 1),
            "sustained": sustained,
            "verdict": verdict_text,
            "kpi_handler_batches": {"count": count, "seconds": seconds, "events": events},
            "status_records_read": self.reader.records,
            "webhooks_received": len(self.receiver.received),
        }


def verdict(met: bool) -> str:
    return "MET" if met else "MISSED"


async def timed(bench: Bench, name: str, step: Callable[[], Coroutine[Any, Any, Any]]) -> None:
    started = time.perf_counter()
    await step()
    bench.details.setdefault("section_seconds", {})[name] = round(time.perf_counter() - started, 1)


async def run(settings: Settings) -> dict[str, Any]:
    sections = settings.sections
    measured_on = machine()
    async with scratch("b") as resources:
        bench = Bench(resources, settings)
        async with bench.opened():
            bench.say(f"run {resources.run_id}: sections {', '.join(sections)} ({settings.mode})")
            # The large catalogue goes last: its kpi service is stopped at the end of its time
            # budget, possibly leaving FerretDB a long statement to finish.
            steps: list[tuple[str, str, Callable[[], Coroutine[Any, Any, Any]]]] = [
                ("baselines", "baselines_before", lambda: bench.baselines("before")),
                ("ingest", "ingest", bench.ingest),
                ("pipeline", "pipeline_horizontal", bench.pipeline),
                ("scale", "scale_history", bench.scale_history),
                ("latency", "latency", bench.latency),
                ("baselines", "baselines_after", lambda: bench.baselines("after")),
                ("scale", "scale_catalogue", bench.scale_catalogue),
            ]
            for section, name, step in steps:
                if section in sections:
                    if name in {"baselines_after", "scale_catalogue"}:
                        # The latency section stops a kpi service with a backlog.
                        await bench.settle(name, settings.settle_s)
                    await timed(bench, name, step)
            if "baselines" in sections:
                bench.report_baselines()
            if "ingest" in sections:
                bench.report_ingest()
            if "pipeline" in sections:
                bench.report_pipeline()
            if "latency" in sections:
                bench.report_latency()
            if "scale" in sections:
                bench.report_scale()
            bench.report_memory()
            if "pipeline" in sections:
                bench.report_horizontal()
            bench.say("removing the run's topics and databases")
    compared = [section for section in ("pipeline", "latency") if section in sections]
    compare_url = os.environ.get("SHINCHOKU_BENCH_COMPARE_MONGO")
    if compared and compare_url:
        await compare_backend(bench, settings, compared, compare_url)
    if "scale" in sections and settings.history[-1] < 1_000_000:
        bench.notes.append(
            f"scale: measured up to {settings.history[-1]:,} prior observations; "
            "`make bench BENCH_ARGS=--full` measures 1,000,000 (its prefill alone takes "
            "minutes on this machine)"
        )
    return {
        "machine": measured_on,
        "settings": asdict(settings),
        "targets": TARGETS,
        "figures": bench.figures,
        "expected_figures": expected_figures(settings),
        "details": bench.details,
        "notes": bench.notes,
        "rows": bench.rows,
        "load_average_at_end": load_average(),
        "wall_s": round(time.perf_counter() - bench.started, 1),
    }


async def compare_backend(
    bench: Bench, settings: Settings, sections: Sequence[str], mongo_url: str
) -> None:
    """The pipeline (one kpi service) and latency sections again, on a second FerretDB with
    another storage backend (`make bench` starts one on SQLite beside the PostgreSQL-backed
    stack), same broker, same run: figures under `<backend>.`, rows beside the first ones."""
    backend = os.environ.get("SHINCHOKU_BENCH_COMPARE_BACKEND", "compare")
    main_backend = os.environ.get("SHINCHOKU_BENCH_BACKEND", "stack")
    async with scratch("c", mongo_url) as resources:
        other = Bench(resources, settings)
        async with other.opened():
            other.started = bench.started
            other.say(f"comparison on the {backend} backend ({mongo_url}): {', '.join(sections)}")
            if "pipeline" in sections:
                events = observation_events(other.kpis, settings.events, tag="pipeline")
                rate = await other.kpi_throughput("cmp_pipe1", 1, events)
                other.figure("pipeline.events_per_s", rate.per_s)
                other.details["pipeline"] = {"one": asdict(rate)}
            if "latency" in sections:
                await bench.settle("comparison latency", settings.settle_s)
                await timed(other, "latency", other.latency)
            if "pipeline" in sections:
                other.report_pipeline()
            if "latency" in sections:
                other.report_latency()
    for name, value in other.figures.items():
        bench.figures[f"{backend}.{name}"] = value
    bench.details[backend] = other.details
    bench.details["backends"] = {"main": main_backend, "compared": backend}
    for section, what, shown, note in other.rows:
        bench.rows.append((f"{section} ({backend})", what, shown, note))
    bench.notes.extend(other.notes)
    bench.notes.append(
        f"rows marked ({backend}) ran the same sections on FerretDB's {backend} backend in this "
        f"run; the others on {main_backend}"
    )


def print_table(report: dict[str, Any]) -> None:
    m = report["machine"]
    commit = (m["git_commit"] or "unknown")[:10]
    if m["git_dirty"]:
        commit += " (with local changes)"
    print()
    print(
        f"Shinchoku benchmarks, {report['settings']['mode']} run: {m['hostname']}, {m['cpus']} x "
        f"{m['cpu_model']}, {m['ram_gib']} GiB RAM, {m['date']}, commit {commit}"
    )
    print(
        f"load average {m['load_average']} at the start, {report['load_average_at_end']} at the "
        f"end (the machine is shared); wall time {report['wall_s']:.0f} s"
    )
    rows = report["rows"]
    widths = [max(len(r[i]) for r in rows) for i in range(3)] if rows else [0, 0, 0]
    header = ("section", "figure", "value", "against")
    widths = [max(w, len(h)) for w, h in zip(widths, header, strict=False)]
    line = "  ".join(f"{{:<{w}}}" for w in widths) + "  {}"
    print()
    print(line.format(*header))
    print(line.format(*("-" * w for w in widths), "-" * 7))
    for row in rows:
        print(line.format(*row))
    for note in report["notes"]:
        print(f"note: {note}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="smoke run, about 1-2 minutes")
    size.add_argument("--full", action="store_true", help="1,000,000 prior observations")
    parser.add_argument("--sections", help=f"comma-separated subset of {','.join(SECTIONS)}")
    parser.add_argument("--events", type=int, help="events per baseline/ingest/pipeline run")
    parser.add_argument("--single-events", type=int)
    parser.add_argument("--scale-events", type=int, help="events per scale point")
    parser.add_argument("--history", help="prior observation counts, e.g. 0,10000,100000")
    parser.add_argument("--kpis-large", type=int, help="the large catalogue's KPI count")
    parser.add_argument("--rates", help="offered loads for the latency section, e.g. 500,2000")
    parser.add_argument("--latency-seconds", type=float, help="seconds of load per rate")
    parser.add_argument("--out", type=Path, default=RESULTS / "bench.json")
    args = parser.parse_args(argv)
    settings = Settings.from_args(args)
    report = asyncio.run(run(settings))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    print_table(report)
    print(f"\nwritten: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""What every benchmark shares: scratch topics and databases on the local stack, a synthetic
catalogue and its events, the bare Kafka and FerretDB clients the services are measured against,
services started as processes, committed-offset polling, peak RSS and the machine's description.

Nothing here asserts: benchmarks print figures and write them to ``bench-results/``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import platform
import secrets
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from harness.services import (
    RunningService,
    service_environment,
    start_service,
    stop_service,
    wait_ready,
)
from harness.stack import StackEndpoints, kafka_settings
from services.ingest.adapters.keys import ApiKeyStore
from services.kpi.adapters.repository import observation_document
from shared.catalogue_store import ITEMS
from shared.events.contracts import KpiObservedEvent, ministry_event_adapter
from shared.events.kafka_binding import EncodedRecord, encode_structured
from shared.kafka import (
    client_options,
    create_consumer,
    create_producer,
    ensure_topics,
)
from shared.mongo import MongoClient, create_mongo_client
from shared.settings import KafkaSettings, MongoSettings, TopicSettings

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench-results"
MINISTRY = "digital"
PARTITIONS = 6
# The kpi service's consumer fetches up to this many records at a time (shared/consumer.py);
# the baselines fetch and store in batches of the same size.
FETCH_RECORDS = 2000
Document = dict[str, Any]


# ---------------------------------------------------------------------------------------------
# the machine


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def machine() -> dict[str, Any]:
    """Where the figures were measured: host, CPUs, RAM, when, which commit."""
    model = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    ram_gib = 0.0
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                ram_gib = int(line.split()[1]) / 1024**2
    return {
        "hostname": socket.gethostname(),
        "cpus": os.cpu_count() or 0,
        "cpu_model": model,
        "ram_gib": round(ram_gib, 1),
        "python": platform.python_version(),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "git_commit": _git("rev-parse", "HEAD"),
        "git_dirty": bool(_git("status", "--porcelain", "--untracked-files=no")),
        "load_average": load_average(),
    }


def _git(*args: str) -> str:
    try:
        out = subprocess.run(
            ["git", *args], cwd=ROOT, capture_output=True, text=True, check=True, timeout=10
        )
    except (OSError, subprocess.SubprocessError):
        return ""
    return out.stdout.strip()


def peak_rss_mb(pid: int) -> float:
    """The process's peak resident set size (VmHWM), in MB; 0 when it cannot be read."""
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0


def process_named(name: str) -> int | None:
    """The pid of a running program whose executable's name contains `name` (None if none)."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            program = (entry / "cmdline").read_bytes().split(b"\0", 1)[0].decode(errors="replace")
            if name in Path(program).name:
                return int(entry.name)
    return None


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time the process has used so far (None when it cannot be read)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def wait_until_quiet(
    pid: int | None, *, busy_share: float = 0.25, timeout_s: float = 60.0
) -> float | None:
    """Wait until the process uses less than `busy_share` of a core over one second (FerretDB
    may still be executing a long statement for a client that was stopped). Returns the
    seconds waited, or None if it was still busy after `timeout_s` (or cannot be watched)."""
    if pid is None:
        return None
    started = time.perf_counter()
    while time.perf_counter() - started < timeout_s:
        before = cpu_seconds(pid)
        await asyncio.sleep(1.0)
        after = cpu_seconds(pid)
        if before is None or after is None:
            return None
        if after - before < busy_share:
            return round(time.perf_counter() - started, 1)
    return None


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty sequence."""
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[index]


def metric_total(metrics: str, prefix: str, *, containing: str = "") -> float:
    """The sum of every sample in a Prometheus text exposition whose name (with labels) starts
    with `prefix` and contains `containing`."""
    total = 0.0
    for line in metrics.splitlines():
        if line.startswith("#") or " " not in line:
            continue
        name, _, value = line.rpartition(" ")
        if name.startswith(prefix) and containing in name:
            total += float(value)
    return total


@dataclass(frozen=True)
class Rate:
    """`count` items in `seconds`."""

    count: int
    seconds: float

    @property
    def per_s(self) -> float:
        return self.count / self.seconds if self.seconds > 0 else 0.0


# ---------------------------------------------------------------------------------------------
# scratch topics and databases


def topic_names(run_id: str, name: str, partitions: int = PARTITIONS) -> TopicSettings:
    return TopicSettings(
        events=f"bench.{run_id}.{name}.events",
        status=f"bench.{run_id}.{name}.status",
        dead_letter=f"bench.{run_id}.{name}.dlq",
        partitions=partitions,
    )


@dataclass
class Scratch:
    """The topics and databases one benchmark run creates on the shared stack; `close` removes
    them, so the stack keeps nothing."""

    endpoints: StackEndpoints
    run_id: str
    kafka: KafkaSettings
    mongo: MongoClient
    log_dir: Path
    topics: list[TopicSettings] = field(default_factory=list)
    databases: list[str] = field(default_factory=list)

    async def topic_set(self, name: str, partitions: int = PARTITIONS) -> TopicSettings:
        topics = topic_names(self.run_id, name, partitions)
        await ensure_topics(self.kafka, topics)
        self.topics.append(topics)
        return topics

    def database(self, name: str) -> str:
        database = f"bench_{self.run_id}_{name}"
        self.databases.append(database)
        return database

    async def drop_database(self, database: str) -> None:
        await self.mongo.drop_database(database)
        if database in self.databases:
            self.databases.remove(database)

    async def close(self) -> None:
        for database in list(self.databases):
            with contextlib.suppress(Exception):
                await self.drop_database(database)
        admin = AIOKafkaAdminClient(**client_options(self.kafka))
        await admin.start()
        try:
            names = [n for t in self.topics for n in (t.events, t.status, t.dead_letter)]
            with contextlib.suppress(Exception):
                await admin.delete_topics(names)
        finally:
            await admin.close()
        await self.mongo.close()


@contextlib.asynccontextmanager
async def scratch(prefix: str, mongo_url: str | None = None) -> AsyncIterator[Scratch]:
    """`mongo_url`: another MongoDB-compatible server than the stack's (a backend comparison)."""
    endpoints = StackEndpoints() if mongo_url is None else StackEndpoints(mongo=mongo_url)
    run_id = f"{prefix}{secrets.token_hex(3)}"
    mongo = create_mongo_client(
        MongoSettings(url=endpoints.mongo, database="admin"), app_name=f"bench-{prefix}"
    )
    log_dir = RESULTS / "logs" / run_id
    log_dir.mkdir(parents=True, exist_ok=True)
    resources = Scratch(endpoints, run_id, kafka_settings(endpoints), mongo, log_dir)
    try:
        yield resources
    except BaseException:
        print(f"services' logs kept in {log_dir}", file=sys.stderr)
        raise
    else:
        shutil.rmtree(log_dir, ignore_errors=True)
    finally:
        await resources.close()


# ---------------------------------------------------------------------------------------------
# the synthetic catalogue and its events

# Synthetic KPIs: a percentage rising from 10 (FY2020 end) to 90 (FY2030 end).
BASELINE = (10.0, date(2021, 3, 31))
TARGET = (90.0, date(2031, 3, 31))


def synthetic_kpis(
    count: int, prefix: str = "bench", measures: int = 20, measure_prefix: str = "m.bench"
) -> list[Document]:
    """Catalogue items in the loader's shape: `count` percentage KPIs owned by `digital`."""
    return [
        {
            "_id": f"kpi.{prefix}-{i:05d}",
            "id": f"kpi.{prefix}-{i:05d}",
            "kind": "kpi",
            "measure_id": f"{measure_prefix}-{i % measures:02d}",
            "unit": "%",
            "direction": "increase",
            "accumulation": "level",
            "ministries": [MINISTRY],
            "state": "active",
            "baseline": {"value": BASELINE[0], "as_of": BASELINE[1].isoformat()},
            "targets": [
                {
                    "value": TARGET[0],
                    "deadline": TARGET[1].isoformat(),
                    "deadline_text": "2030年度末",
                }
            ],
        }
        for i in range(count)
    ]


def planned_value(on: date) -> float:
    """Where the synthetic KPIs' plan stands on a date (linear from baseline to target)."""
    (start, start_day), (end, end_day) = BASELINE, TARGET
    return start + (end - start) * (on - start_day).days / (end_day - start_day).days


async def insert_catalogue(mongo: MongoClient, database: str, items: list[Document]) -> None:
    """Insert catalogue items in bulk (a fresh database: the loader's upserts would each scan)."""
    for start in range(0, len(items), 2000):
        await mongo[database][ITEMS].insert_many(items[start : start + 2000], ordered=False)


async def create_api_key(mongo: MongoClient, database: str) -> str:
    key, _ = await ApiKeyStore(mongo, database).create(MINISTRY, datetime.now(UTC), "bench")
    return key


def observation_event(
    kpi_id: str, event_id: str, value: float, as_of: date, when: datetime | None = None
) -> Document:
    """A kpi.observed CloudEvent as a ministry posts it (JSON)."""
    return {
        "specversion": "1.0",
        "id": event_id,
        "source": f"/ministries/{MINISTRY}",
        "type": KpiObservedEvent.TYPE,
        "subject": kpi_id,
        "time": (when or datetime.now(UTC)).isoformat(),
        "datacontenttype": "application/json",
        "data": {"kpi_id": kpi_id, "value": value, "as_of": as_of.isoformat(), "note": None},
    }


def observation_events(
    kpis: Sequence[Document], count: int, *, start_day: int = 0, tag: str = ""
) -> list[Document]:
    """`count` observations round-robin over the KPIs, one as_of day apart per round (the
    rounds end near today, so the KPIs are current), values spread over 10..89 (statuses change
    often: recomputation and status changes both happen)."""
    tag = tag or secrets.token_hex(4)
    first_day = date.today() - timedelta(days=900)
    return [
        observation_event(
            kpis[n % len(kpis)]["id"],
            f"{tag}-{n}",
            10.0 + (n % 80),
            min(first_day + timedelta(days=start_day + n // len(kpis)), date.today()),
        )
        for n in range(count)
    ]


def kafka_records(events: Sequence[Document]) -> list[EncodedRecord]:
    """Exactly what ingest writes for these events: structured mode, keyed by the KPI id."""
    records = []
    for raw in events:
        event = ministry_event_adapter.validate_python(raw)
        records.append(encode_structured(event.model_copy(update={"partitionkey": event.subject})))
    return records


def observation_documents(kpis: Sequence[Document], start: int, count: int) -> list[Document]:
    """Documents of the shape the kpi service stores in kpi_observations (built from one it
    made itself), for prefilling a database with history: as_of dates before the measured
    events'."""
    template = observation_document(
        ministry_event_adapter.validate_python(
            observation_event(kpis[0]["id"], "prefill", 50.0, date.today())
        ),
        datetime.now(UTC),
    )
    oldest = date.today() - timedelta(days=4000)
    docs = []
    for n in range(start, start + count):
        kpi_id = kpis[n % len(kpis)]["id"]
        event_id = f"prefill-{n:08d}"
        as_of = (oldest + timedelta(days=n // len(kpis) % 3000)).isoformat()
        doc = dict(template)
        doc["_id"] = f"{template['source']}\x1f{event_id}"
        doc["event_id"] = event_id
        doc["subject_id"] = kpi_id
        doc["as_of"] = as_of
        doc["data"] = {**template["data"], "kpi_id": kpi_id, "value": 10.0 + n % 80, "as_of": as_of}
        docs.append(doc)
    return docs


# ---------------------------------------------------------------------------------------------
# bare clients: the ceilings


async def bare_produce(
    kafka: KafkaSettings,
    topic: str,
    records: Sequence[EncodedRecord],
    *,
    batch_size: int = 500,
    in_flight: int = 4,
) -> Rate:
    """A bare aiokafka producer with ingest's settings (idempotent, acks=all): sends the
    records in batches of `batch_size`, `in_flight` batches at a time, awaiting every
    acknowledgement, as ingest's batch endpoint does. Counts acknowledged records."""
    producer = create_producer(kafka, client_suffix="bench-bare")
    await producer.start()
    try:
        queue = [records[i : i + batch_size] for i in range(0, len(records), batch_size)]
        queue.reverse()
        acked = 0

        async def worker() -> None:
            nonlocal acked
            while queue:
                batch = queue.pop()
                futures = [
                    await producer.send(topic, value=r.value, key=r.key, headers=r.headers)
                    for r in batch
                ]
                results = await asyncio.gather(*futures, return_exceptions=True)
                acked += sum(not isinstance(r, BaseException) for r in results)

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(in_flight)))
        return Rate(acked, time.perf_counter() - started)
    finally:
        await producer.stop()


async def bare_consume(
    kafka: KafkaSettings,
    topic: str,
    total: int,
    *,
    mongo: MongoClient | None = None,
    database: str = "",
    collection: str = "",
    timeout_s: float = 300,
) -> Rate:
    """A bare consumer with the kpi service's consumer settings reads `total` records from the
    start of `topic`; with `mongo`, it also bulk-inserts each fetched batch (insert_many) and
    commits after it, as the kpi service does. The rate runs from the end of the first batch to
    the end of the last (the first batch's records are not counted), as the service's rate is
    read from its committed offsets."""
    consumer = create_consumer(kafka, topics=[topic], group_id=f"bench-bare-{secrets.token_hex(4)}")
    await consumer.start()
    seen = 0
    first: tuple[float, int] | None = None
    began = time.perf_counter()
    deadline = time.monotonic() + timeout_s
    try:
        while seen < total:
            if time.monotonic() > deadline:
                raise TimeoutError(f"bare consumer: {seen} of {total} records in {timeout_s}s")
            batches = await consumer.getmany(timeout_ms=500, max_records=FETCH_RECORDS)
            records = [r for batch in batches.values() for r in batch]
            if not records:
                continue
            if mongo is not None:
                docs = [
                    {"_id": f"{r.partition}:{r.offset}", "event": json.loads(r.value)}
                    for r in records
                ]
                await mongo[database][collection].insert_many(docs, ordered=False)
                await consumer.commit()
            seen += len(records)
            if first is None:
                first = (time.perf_counter(), seen)
        assert first is not None
        if seen == first[1]:  # one batch held everything: time it from the start
            return Rate(seen, time.perf_counter() - began)
        return Rate(seen - first[1], time.perf_counter() - first[0])
    finally:
        await consumer.stop()


async def bare_insert_many(
    mongo: MongoClient, database: str, collection: str, docs: Sequence[Document]
) -> Rate:
    """insert_many of `docs` in batches of the consumer's fetch size, one after the other."""
    started = time.perf_counter()
    for start in range(0, len(docs), FETCH_RECORDS):
        await mongo[database][collection].insert_many(
            list(docs[start : start + FETCH_RECORDS]), ordered=False
        )
    return Rate(len(docs), time.perf_counter() - started)


async def prefill_observations(
    mongo: MongoClient,
    database: str,
    kpis: Sequence[Document],
    start: int,
    count: int,
    *,
    chunk: int = 10_000,
) -> Rate:
    """Insert `count` history documents straight into kpi_observations, in big insert_many
    chunks; the next chunk is built in a thread while the previous one is being written."""
    collection = mongo[database]["kpi_observations"]
    started = time.perf_counter()
    end = start + count
    pending = asyncio.create_task(
        asyncio.to_thread(observation_documents, kpis, start, min(chunk, count))
    )
    position = start
    while position < end:
        docs = await pending
        position += len(docs)
        if position < end:
            size = min(chunk, end - position)
            pending = asyncio.create_task(
                asyncio.to_thread(observation_documents, kpis, position, size)
            )
        await collection.insert_many(docs, ordered=False)
    return Rate(count, time.perf_counter() - started)


# ---------------------------------------------------------------------------------------------
# Kafka positions


async def committed_total(admin: AIOKafkaAdminClient, group: str, topic: str) -> int:
    offsets = await admin.list_consumer_group_offsets(group)
    return sum(meta.offset for tp, meta in offsets.items() if tp.topic == topic and meta.offset > 0)


async def end_offsets_total(kafka: KafkaSettings, topic: str, partitions: int) -> int:
    """How many records the topic holds (sum of its partitions' end offsets)."""
    consumer = AIOKafkaConsumer(**client_options(kafka), group_id=None)
    await consumer.start()
    try:
        ends = await consumer.end_offsets([TopicPartition(topic, p) for p in range(partitions)])
        return sum(ends.values())
    finally:
        await consumer.stop()


@dataclass(frozen=True)
class CommitWindow:
    """Committed-offset observations of one measurement (perf_counter times)."""

    started: float  # when polling began
    base: int  # committed then
    first_at: float | None  # when the committed count first moved (None: it never did)
    first_count: int  # the committed count then
    last_at: float  # when it reached the target, or when polling gave up
    last_count: int  # the committed count then
    target: int

    @property
    def complete(self) -> bool:
        return self.last_count >= self.target

    def rate(self) -> Rate:
        """Records committed after the first movement, over the time since it (the first
        batch's records are not counted); the whole span from `started` when everything
        moved at once or nothing moved."""
        if self.first_at is None or self.last_count == self.first_count:
            return Rate(self.last_count - self.base, max(self.last_at - self.started, 1e-3))
        return Rate(self.last_count - self.first_count, self.last_at - self.first_at)


async def wait_for_commits(
    admin: AIOKafkaAdminClient,
    group: str,
    topic: str,
    target: int,
    timeout_s: float,
    *,
    partial: bool = False,
) -> CommitWindow:
    """Polls the group's committed offsets until they sum to `target`. The kpi service commits
    a batch only after its states are stored and its status changes published. After
    `timeout_s`, returns what was committed when `partial`, else raises TimeoutError."""
    started = time.perf_counter()
    base = count = await committed_total(admin, group, topic)
    first: tuple[float, int] | None = None
    deadline = started + timeout_s
    while True:
        now = time.perf_counter()
        if first is None and count > base:
            first = (now, count)
        if count >= target or now >= deadline:
            break
        await asyncio.sleep(0.1)
        count = await committed_total(admin, group, topic)
    if count < target and not partial:
        raise TimeoutError(f"{group}: {target} records not committed within {timeout_s:.0f}s")
    first_at, first_count = first if first is not None else (None, base)
    return CommitWindow(started, base, first_at, first_count, now, count, target)


async def wait_group_stable(
    admin: AIOKafkaAdminClient, group: str, members: int, timeout_s: float = 90
) -> None:
    """Until the consumer group is Stable with `members` members (partitions assigned)."""
    deadline = time.monotonic() + timeout_s
    seen = ""
    while time.monotonic() < deadline:
        for response in await admin.describe_consumer_groups([group]):
            for described in response.groups:
                state, member_list = described[2], described[5]
                seen = f"{state} with {len(member_list)} members"
                if state == "Stable" and len(member_list) == members:
                    return
        await asyncio.sleep(0.2)
    raise TimeoutError(f"group {group} not Stable with {members} members: {seen}")


# ---------------------------------------------------------------------------------------------
# services as processes


def service_env(
    name: str,
    resources: Scratch,
    topics: TopicSettings,
    database: str,
    *,
    admin_token: str = "",
    group: str | None = None,
    extra: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The test suite's environment for a service (harness/services.py), with warning-
    level logs, an hourly sweep and, for ingest, no rate limit."""
    prefix = f"SHINCHOKU_{name.upper()}_"
    settings = {f"{prefix}LOG_LEVEL": "WARNING"}
    if group is not None:
        settings[f"{prefix}CONSUMER_GROUP"] = group
    if name == "kpi":
        settings[f"{prefix}SWEEP_INTERVAL_S"] = "3600"
    if name == "ingest":
        settings[f"{prefix}RATE_LIMIT__EVENTS_PER_S"] = "1000000000"
        settings[f"{prefix}RATE_LIMIT__BURST"] = "1000000000"
    return service_environment(
        name,
        endpoints=resources.endpoints,
        topics=topics,
        database=database,
        admin_token=admin_token or secrets.token_urlsafe(16),
        extra={**settings, **(extra or {})},
    )


@contextlib.asynccontextmanager
async def services_running(
    specs: Sequence[tuple[str, Mapping[str, str]]], log_dir: Path
) -> AsyncIterator[list[RunningService]]:
    """Start the services together, wait until each is ready, stop them all at the end."""
    started = [start_service(name, env, log_dir) for name, env in specs]
    try:
        for service in started:
            await asyncio.to_thread(wait_ready, service, 120.0)
        yield started
    finally:
        await asyncio.gather(*(asyncio.to_thread(stop_service, s) for s in started))


async def http_drive(
    http: httpx.AsyncClient,
    path: str,
    bodies: Sequence[bytes],
    headers: Mapping[str, str],
    concurrency: int,
    events_per_body: int,
    max_seconds: float | None = None,
) -> tuple[Rate, list[str]]:
    """POST every body with `concurrency` clients, taking no new body after `max_seconds`:
    (events accepted, failures)."""
    queue = list(reversed(bodies))
    accepted = 0
    failures: list[str] = []

    async def post(content: bytes) -> httpx.Response:
        # A lost connection is retried: resending is safe (deduplicated by source + id), and
        # what a lost answer had accepted comes back as a duplicate, counted below.
        for attempt in range(3):
            try:
                return await http.post(path, content=content, headers=dict(headers))
            except httpx.TransportError:
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    deadline = time.perf_counter() + max_seconds if max_seconds else float("inf")

    async def client() -> None:
        nonlocal accepted
        while queue and time.perf_counter() < deadline:
            answer = await post(queue.pop())
            if path.endswith(":batch") and answer.status_code == 200:
                accepted += answer.json()["accepted"] + answer.json()["duplicates"]
            elif answer.status_code in {200, 202}:
                accepted += events_per_body
            else:
                failures.append(f"{answer.status_code} {answer.text[:200]}")

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(concurrency)))
    return Rate(accepted, time.perf_counter() - started), failures


def http_limits(concurrency: int) -> httpx.Limits:
    # Idle connections are dropped before uvicorn's 5 s keep-alive closes them.
    return httpx.Limits(
        max_connections=concurrency, max_keepalive_connections=64, keepalive_expiry=2
    )

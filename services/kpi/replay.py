"""`shinchoku replay`: rebuild every KPI's state from the events topic into a fresh database and
report whether it matches the live state.

The replay reads the events topic from the beginning up to the end offsets seen at start, through
the same consumer runner and handler as the service (status changes are collected, not
published), into a new database holding a copy of the live catalogue. Both states are then
evaluated for the same day, so a live state last evaluated yesterday is not a false mismatch;
what must match is each subject's aggregate (the folded events) and its status.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
from dataclasses import dataclass, field
from typing import Any

from aiokafka import TopicPartition
from prometheus_client import CollectorRegistry

from services.kpi.adapters.catalogue import copy_catalogue, every_item
from services.kpi.adapters.definitions import definition_from_catalogue
from services.kpi.adapters.repository import KpiRepository, ensure_indexes
from services.kpi.composition import EVENT_TYPES, ORDERED_TYPES, build_kpi, mongo_adapters
from services.kpi.domain.model import KpiDefinition
from services.kpi.domain.rules import evaluate_kpi, evaluate_milestone
from services.kpi.domain.state import KpiState, MilestoneState
from services.kpi.metrics import KpiMetrics
from services.kpi.settings import KpiSettings
from shared.catalogue_store import CatalogueStore
from shared.clock import utc_now
from shared.consumer import ConsumerRunner
from shared.kafka import create_consumer
from shared.metrics import ConsumerMetrics
from shared.mongo import MongoClient, create_mongo_client

Document = dict[str, Any]


class CollectingPublisher:
    """Stands in for the status topic during a replay: keeps the events it would publish."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    async def publish(self, events: list[dict[str, Any]]) -> None:
        self.events.extend(events)


@dataclass
class ReplayReport:
    replay_database: str
    events_read: int = 0
    subjects_live: int = 0
    subjects_replayed: int = 0
    matching: int = 0
    mismatches: list[str] = field(default_factory=list)

    @property
    def matches(self) -> bool:
        return not self.mismatches


def _current_status(definition_doc: Document, state_doc: Document, today: Any) -> str:
    definition = definition_from_catalogue(definition_doc)
    if isinstance(definition, KpiDefinition):
        return evaluate_kpi(
            definition, KpiState.model_validate(state_doc["aggregate"]), today
        ).status.value
    return evaluate_milestone(
        definition, MilestoneState.model_validate(state_doc["aggregate"]), today
    ).status.value


async def replay(settings: KpiSettings, *, keep: bool = False) -> ReplayReport:
    mongo = create_mongo_client(settings.mongo, app_name="shinchoku-replay")
    live_name = settings.mongo.database
    replay_name = f"{live_name}_replay_{utc_now():%Y%m%d%H%M%S}_{secrets.token_hex(2)}"
    report = ReplayReport(replay_database=replay_name)
    consumer = create_consumer(
        settings.kafka,
        topics=[settings.topics.events],
        group_id=f"shinchoku-replay-{secrets.token_hex(6)}",
    )
    try:
        await copy_catalogue(mongo, live_name, replay_name)
        replay_db = mongo[replay_name]
        await ensure_indexes(replay_db)
        kpi = build_kpi(
            mongo_adapters(
                replay_db,
                CatalogueStore(mongo, replay_name),
                CollectingPublisher(),
                track_divergence=False,
            ),
            metrics=KpiMetrics.create(CollectorRegistry()),
        )
        await consumer.start()
        partitions = [
            TopicPartition(settings.topics.events, p)
            for p in sorted(consumer.partitions_for_topic(settings.topics.events) or [])
        ]
        end_offsets: dict[TopicPartition, int] = await consumer.end_offsets(partitions)
        report.events_read = sum(end_offsets.values())
        runner = ConsumerRunner(
            consumer=consumer,
            dead_letter_producer=None,
            dead_letter_topic=None,
            event_types=EVENT_TYPES,
            # the copied catalogue's owners are the latest; ownership changes are applied
            # again in order
            handlers=kpi.handlers(),
            ordered_types=ORDERED_TYPES,
            metrics=ConsumerMetrics.create("replay", CollectorRegistry()),
            service="replay",
        )
        await runner.run(until=end_offsets)
        await compare(mongo, live_name, replay_name, report)
    finally:
        await consumer.stop()
        if not keep:
            await mongo.drop_database(replay_name)
        await mongo.close()
    return report


async def compare(mongo: MongoClient, live: str, replayed: str, report: ReplayReport) -> None:
    today = utc_now().date()
    items = await every_item(mongo[live])
    live_states = await KpiRepository(mongo[live]).all_states()
    replay_states = await KpiRepository(mongo[replayed]).all_states()
    report.subjects_live, report.subjects_replayed = len(live_states), len(replay_states)
    for subject_id in sorted(set(live_states) | set(replay_states)):
        live_doc, replay_doc = live_states.get(subject_id), replay_states.get(subject_id)
        item = items.get(subject_id)
        if live_doc is None or replay_doc is None or item is None:
            # A subject the sweep evaluated but no event touched exists on one side only; it
            # matters only if it holds events.
            present = live_doc or replay_doc or {}
            if present.get("aggregate", {}).get("window"):
                report.mismatches.append(
                    f"{subject_id}: present only in {'live' if live_doc else 'replay'}"
                )
            else:
                report.matching += 1
            continue
        if live_doc["aggregate"] != replay_doc["aggregate"]:
            report.mismatches.append(f"{subject_id}: aggregates differ")
            continue
        live_status = _current_status(item, live_doc, today)
        replay_status = _current_status(item, replay_doc, today)
        if live_status != replay_status:
            report.mismatches.append(
                f"{subject_id}: status {live_status} live, {replay_status} replayed"
            )
            continue
        report.matching += 1


def _run(args: argparse.Namespace) -> int:
    report = asyncio.run(replay(KpiSettings(), keep=args.keep))
    print(
        f"replayed {report.events_read} records into {report.replay_database}"
        f"{' (kept)' if args.keep else ' (dropped)'}"
    )
    print(
        f"subjects: live {report.subjects_live}, replayed {report.subjects_replayed}, "
        f"matching {report.matching}, mismatching {len(report.mismatches)}"
    )
    for line in report.mismatches[:50]:
        print(f"  mismatch: {line}")
    print("MATCH" if report.matches else "MISMATCH")
    return 0 if report.matches else 1


def register(groups: Any) -> None:
    parser = groups.add_parser(
        "replay",
        help="rebuild KPI state from the events topic and compare with the live state",
        description="Reads SHINCHOKU_KPI_* settings (Kafka, MongoDB, topics) like the kpi service.",
    )
    parser.add_argument("--keep", action="store_true", help="keep the replay database")
    parser.set_defaults(handler=_run)

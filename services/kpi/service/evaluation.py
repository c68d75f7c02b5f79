"""Evaluation: events are folded into their subjects' states, the states evaluated, and new
state versions stored with the status changes they produced.

Every write path (consumer batches, the time-driven sweep, run-time ownership changes) goes
through `StateUpdater.update`, under one lock per service instance:
  1. store the raw events (idempotent by source + id);
  2. fold the events into the subjects' latest states (idempotent, order-independent), evaluate
     (domain/transition.py);
  3. insert a new state version per changed subject, carrying the status changes it produced in
     its outbox: state and status changes are stored together, in one insert, or not at all;
  4. publish the outboxes (service/outbox.py), then compact when enough has been superseded.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from services.kpi.domain.transition import Definition, SubjectEvent, advance
from services.kpi.ports import (
    EventStore,
    Ownership,
    StateRepository,
    StateVersion,
    VersionConflictError,
)
from services.kpi.service.compaction import Compactor
from services.kpi.service.definitions import Definitions
from services.kpi.service.intake import (
    arrival,
    domain_event,
    misplaced,
    received_event,
    recheck,
)
from services.kpi.service.outbox import OutboxPublisher, status_event
from services.kpi.service.state_cache import LatestStates
from shared.clock import Clock
from shared.consumer_types import Rejection
from shared.events.cloudevents import CloudEvent
from shared.events.contracts import subject_id


@dataclass
class StateUpdater:
    """Steps 2 to 4 for a set of subjects. Callers hold `lock`: one writer at a time (consumer
    batches, the sweep, redefinitions)."""

    lock: asyncio.Lock
    repository: StateRepository
    states: LatestStates
    outbox: OutboxPublisher
    compactor: Compactor
    ownership: Ownership
    # Service time: the day subjects are evaluated for (may be simulated).
    clock: Clock
    # Real time: status events are stamped with it (downstream latencies are measured from
    # it, even when the service's clock runs ahead) and versions record when they were written.
    wall_clock: Clock

    async def flush_outboxes(self) -> None:
        """Publish status changes stored but not acknowledged (after a crash)."""
        async with self.lock:
            await self.states.load()
            await self.outbox.publish_pending()

    async def update(
        self,
        definitions: Mapping[str, Definition],
        new_events: Mapping[str, Sequence[SubjectEvent]],
    ) -> int:
        """Evaluate the subjects with their new events; how many status changes it made."""
        now = self.clock()
        today = now.date()
        cache = await self.states.load()
        # Status changes left from an earlier failed publish go out before newer ones.
        await self.outbox.publish_pending()
        versions: list[StateVersion] = []
        for subject, definition in definitions.items():
            previous = cache.get(subject)
            step = advance(
                definition,
                None if previous is None else previous.state,
                new_events.get(subject, ()),
                today,
            )
            if step.state is None:
                continue
            outbox = () if step.change is None else (status_event(step.change, self.wall_clock()),)
            versions.append(
                StateVersion(
                    state=step.state,
                    version=1 if previous is None else previous.version + 1,
                    outbox=outbox,
                    updated_at=now,
                    written_at=self.wall_clock(),
                    partition=self.ownership.partition_of(subject),
                )
            )
        try:
            await self.repository.insert(versions)
        except VersionConflictError:
            # Another writer got there first: drop the cache so the retry starts from the
            # stored states; versions that did get in are found unacknowledged on reload.
            self.states.drop()
            raise
        self.states.written(cache, versions)
        self.outbox.add(versions)
        await self.outbox.publish_pending()
        await self.compactor.compact()
        return sum(len(v.outbox) for v in versions)


@dataclass
class SubjectEvents:
    """The consumer's handler for kpi.observed and milestone.reported batches, and the
    re-evaluation of subjects whose catalogue entry changed at run time."""

    definitions: Definitions
    events: EventStore
    updater: StateUpdater
    ownership: Ownership
    clock: Clock
    # Real time, for the `time` rule (senders stamp real time; `clock` may be simulated).
    wall_clock: Clock

    async def on_subject_events(self, events: Sequence[CloudEvent]) -> Sequence[Rejection]:
        by_subject: dict[str, list[CloudEvent]] = {}
        for event in events:
            by_subject.setdefault(subject_id(event), []).append(event)
        async with self.updater.lock:
            entries = await self.definitions.entries(list(by_subject))
            rejections = [
                Rejection(event, "unknown_subject", f"{subject!r} is not in the catalogue")
                for subject, subject_events in by_subject.items()
                if subject not in entries
                for event in subject_events
            ]
            # A record may have reached the topic by another path than ingest: the checks
            # ingest makes are made again here (docs/trust-model.md).
            now, received_at = self.clock(), self.wall_clock()
            for subject, subject_events in by_subject.items():
                entry = entries.get(subject)
                if entry is None:
                    continue
                for event in subject_events:
                    rejection = recheck(event, entry.facts, entry.owners, now, received_at)
                    if rejection is not None:
                        rejections.append(rejection)
            rejected = {r.event.dedup_key for r in rejections}
            rejections.extend(misplaced(e for e in events if e.dedup_key not in rejected))
            rejected = {r.event.dedup_key for r in rejections}
            accepted = [e for e in events if e.dedup_key not in rejected]
            # An event already stored (redelivered, or sent again with the same id) keeps the
            # arrival it was first stored with: a copy arriving later must not make an old
            # value the latest revision again.
            first_arrivals = await self.events.store_events(
                [received_event(e, now) for e in accepted]
            )
            grouped: dict[str, list[SubjectEvent]] = {}
            for event in accepted:
                first = first_arrivals.get(event.dedup_key, arrival(event))
                grouped.setdefault(subject_id(event), []).append(domain_event(event, first, now))
            await self.updater.update({s: entries[s].definition for s in grouped}, grouped)
        return rejections

    async def redefine(self, subject_ids: Sequence[str]) -> None:
        """Catalogue entries changed in the database at run time (an ownership change,
        service/ownership.py): their cached definitions are read again, and the subjects this
        instance writes are re-evaluated, so their states (scorecards, metrics by ministry) and
        later status changes carry the change."""
        async with self.updater.lock:
            self.definitions.forget(subject_ids)
            entries = await self.definitions.entries(list(subject_ids))
            owned = {s: e.definition for s, e in entries.items() if self.ownership.owns(s)}
            if owned:
                await self.updater.update(owned, {})

"""KPI use cases: fold events into per-subject state, re-evaluate, publish status changes.

Every write path (consumer batches, the time-driven sweep) goes through `_update`, under one
lock per service instance, so the outbox of a subject has a single writer:
  1. store the raw events (idempotent by source + id);
  2. load the subjects' states, fold the events in (idempotent, order-independent), evaluate;
  3. save states with new status changes in their outbox (one replace per subject, bulk);
  4. publish the outbox to Kafka, wait for the acknowledgements, then empty it.
A crash between 3 and 4 leaves the outbox full; it is published at the next start (the event
ids are deterministic, so a status change published twice is recognised downstream).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Protocol

import structlog

from services.kpi.adapters.definitions import Definition, definition_from_catalogue
from services.kpi.adapters.repository import KpiRepository
from services.kpi.domain.episodes import EpisodeState, track
from services.kpi.domain.model import (
    KpiDefinition,
    MilestoneReport,
    Observation,
    ReportedState,
)
from services.kpi.domain.rules import evaluate_kpi, evaluate_milestone
from services.kpi.domain.state import KpiState, MilestoneState, apply_observation, apply_report
from services.kpi.metrics import KpiMetrics
from shared.catalogue_store import CatalogueStore
from shared.consumer import Rejection
from shared.events.cloudevents import CloudEvent
from shared.events.contracts import (
    BAD_STATUSES,
    KpiObserved,
    KpiStatusChanged,
    MeasureAssessed,
    MilestoneReported,
    Status,
    new_status_event,
    status_severity,
)

log = structlog.stdlib.get_logger("kpi")
Document = dict[str, Any]


def _domain_event(event: CloudEvent) -> Observation | MilestoneReport:
    data = event.data
    if isinstance(data, KpiObserved):
        return Observation(
            event_id=event.id, value=data.value, as_of=data.as_of, received_at=event.time
        )
    assert isinstance(data, MilestoneReported)
    return MilestoneReport(
        event_id=event.id,
        state=ReportedState(data.state.value),
        percent_complete=data.percent_complete,
        expected_completion=data.expected_completion,
        as_of=data.as_of,
        received_at=event.time,
    )


class StatusSink(Protocol):
    """Where status changes go: the status topic (StatusPublisher), or a replay's collector."""

    async def publish(self, events: list[dict[str, Any]]) -> None: ...


@dataclass
class KpiHandler:
    repository: KpiRepository
    catalogue: CatalogueStore
    publisher: StatusSink
    metrics: KpiMetrics
    clock: Callable[[], datetime]
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def on_subject_events(self, events: Sequence[CloudEvent]) -> Sequence[Rejection]:
        """Handler for kpi.observed and milestone.reported batches."""
        by_subject: dict[str, list[CloudEvent]] = {}
        for event in events:
            by_subject.setdefault(_subject_of(event), []).append(event)
        async with self.lock:
            docs = await self.catalogue.items(list(by_subject))
            rejections = [
                Rejection(event, "unknown_subject", f"{subject!r} is not in the catalogue")
                for subject, subject_events in by_subject.items()
                if subject not in docs
                for event in subject_events
            ]
            kinds = {"kpi": KpiObserved, "milestone": MilestoneReported}
            for subject, subject_events in by_subject.items():
                doc = docs.get(subject)
                if doc is None:
                    continue
                expected = kinds.get(str(doc.get("kind")))
                for event in subject_events:
                    if not isinstance(event.data, expected or ()):
                        rejections.append(
                            Rejection(event, "wrong_kind", f"{subject!r} is a {doc.get('kind')}")
                        )
            rejected = {r.event.dedup_key for r in rejections}
            accepted = [e for e in events if e.dedup_key not in rejected]
            await self.repository.store_observations([_raw_document(e) for e in accepted])
            grouped: dict[str, list[Observation | MilestoneReport]] = {}
            for event in accepted:
                grouped.setdefault(_subject_of(event), []).append(_domain_event(event))
            await self._update({s: definition_from_catalogue(docs[s]) for s in grouped}, grouped)
        return rejections

    async def on_assessments(self, events: Sequence[CloudEvent]) -> Sequence[Rejection]:
        documents = []
        for event in events:
            data = event.data
            assert isinstance(data, MeasureAssessed)
            documents.append(
                {
                    "_id": event.dedup_key,
                    "event_id": event.id,
                    "measure_id": data.measure_id,
                    "rating": data.rating.value,
                    "as_of": data.as_of.isoformat(),
                    "narrative": data.narrative,
                    "time": event.time,
                }
            )
        await self.repository.store_assessments(documents)
        return ()

    async def sweep(self) -> int:
        """Re-evaluate every catalogue subject for today: deadlines pass, reports go stale."""
        async with self.lock:
            definitions = {
                d.id: d
                for d in (
                    definition_from_catalogue(doc) for doc in await self.catalogue.all_items()
                )
            }
            changed = await self._update(definitions, {})
            await self._refresh_status_gauge()
        return changed

    async def flush_outboxes(self) -> None:
        async with self.lock:
            pending = await self.repository.states_with_outbox()
            await self._publish(pending)

    async def _update(
        self,
        definitions: dict[str, Definition],
        new_events: dict[str, list[Observation | MilestoneReport]],
    ) -> int:
        now = self.clock()
        today = now.date()
        states = await self.repository.load_states(list(definitions))
        to_save: list[Document] = []
        transitions: list[Document] = []
        for subject_id, definition in definitions.items():
            doc = states.get(subject_id)
            updated = self._evaluate(definition, doc, new_events.get(subject_id, ()), today, now)
            if updated is None:
                continue
            to_save.append(updated)
            transitions.extend(updated.pop("_new_transitions"))
        await self.repository.save_states(to_save)
        await self.repository.record_transitions(transitions)
        await self._publish([d for d in to_save if d["outbox"]])
        return len(transitions)

    def _evaluate(
        self,
        definition: Definition,
        doc: Document | None,
        events: Iterable[Observation | MilestoneReport],
        today: date,
        now: datetime,
    ) -> Document | None:
        """The subject's next state document, or None when nothing changed."""
        episode = (
            EpisodeState.model_validate(doc["episode"])
            if doc
            else EpisodeState.initial(definition.id)
        )
        events = list(events)
        if isinstance(definition, KpiDefinition):
            kpi_state = (
                KpiState.model_validate(doc["aggregate"])
                if doc
                else KpiState.for_definition(definition)
            )
            for item in events:
                assert isinstance(item, Observation)
                kpi_state = apply_observation(kpi_state, item)
            evaluation = evaluate_kpi(definition, kpi_state, today)
            aggregate: Document = kpi_state.model_dump(mode="json")
            kind = "kpi"
        else:
            milestone_state = (
                MilestoneState.model_validate(doc["aggregate"])
                if doc
                else MilestoneState.for_definition(definition)
            )
            for item in events:
                assert isinstance(item, MilestoneReport)
                milestone_state = apply_report(milestone_state, item)
            evaluation = evaluate_milestone(definition, milestone_state, today)
            aggregate = milestone_state.model_dump(mode="json")
            kind = "milestone"
        transition = track(episode, evaluation)
        evaluation_doc = evaluation.model_dump(mode="json")
        if (
            doc is not None
            and not events
            and transition.event is None
            and (doc.get("evaluation") == evaluation_doc)
        ):
            return None
        seq = int(doc["seq"]) if doc else 0
        outbox = list(doc["outbox"]) if doc else []
        new_transitions: list[Document] = []
        if transition.event is not None:
            seq += 1
            change = KpiStatusChanged(
                kpi_id=definition.id,
                kind=kind,
                measure_id=definition.measure_id,
                ministries=list(definition.ministries),
                previous_status=(
                    None
                    if transition.event.previous_status is None
                    else Status(transition.event.previous_status.value)
                ),
                status=Status(transition.event.new_status.value),
                episode_id=transition.event.episode_id,
                evaluated_on=transition.event.evaluated_on,
                explanation=transition.event.explanation.model_dump(mode="json"),
            )
            status_event = new_status_event(
                change, event_id=f"status:{definition.id}:{seq}", time=now
            ).to_json_dict()
            outbox.append(status_event)
            new_transitions.append(
                {
                    "_id": status_event["id"],
                    "subject_id": definition.id,
                    "seq": seq,
                    "event": status_event,
                }
            )
        return {
            "_id": definition.id,
            "kind": kind,
            "measure_id": definition.measure_id,
            "ministries": list(definition.ministries),
            "aggregate": aggregate,
            "episode": transition.state.model_dump(mode="json"),
            "evaluation": evaluation_doc,
            "status": evaluation.status.value,
            "seq": seq,
            "outbox": outbox,
            "has_outbox": bool(outbox),
            "updated_at": now,
            "_new_transitions": new_transitions,
        }

    async def _publish(self, docs: list[Document]) -> None:
        events = [event for doc in docs for event in doc["outbox"]]
        if not events:
            return
        await self.publisher.publish(events)
        await self.repository.clear_outboxes([doc["_id"] for doc in docs])
        for event in events:
            data = event["data"]
            self.metrics.transitions.labels(
                from_status=data.get("previous_status") or "none", to_status=data["status"]
            ).inc()
            direction = _direction(data.get("previous_status"), data["status"])
            # Keep the by-status gauge current between sweeps (which recount from the database).
            for ministry in data.get("ministries") or ["unassigned"]:
                if direction is not None:
                    counter = self.metrics.slips if direction == "slip" else self.metrics.recoveries
                    counter.labels(
                        ministry=ministry, kind=data["kind"], status=data["status"]
                    ).inc()
                if data.get("previous_status"):
                    self.metrics.subjects_by_status.labels(
                        status=data["previous_status"], kind=data["kind"], ministry=ministry
                    ).dec()
                self.metrics.subjects_by_status.labels(
                    status=data["status"], kind=data["kind"], ministry=ministry
                ).inc()
            log.info(
                "status_changed",
                kpi_id=data["kpi_id"],
                event_id=event["id"],
                previous_status=data.get("previous_status"),
                status=data["status"],
            )

    async def _refresh_status_gauge(self) -> None:
        counts: dict[tuple[str, str, str], int] = {}
        for doc in await self.repository.all_states():
            for ministry in doc.get("ministries") or ["unassigned"]:
                key = (doc["status"], doc["kind"], ministry)
                counts[key] = counts.get(key, 0) + 1
        self.metrics.subjects_by_status.clear()
        for (status, kind, ministry), count in counts.items():
            self.metrics.subjects_by_status.labels(status=status, kind=kind, ministry=ministry).set(
                count
            )


def _direction(previous: str | None, new: str) -> str | None:
    """ "slip" for a change to a worse bad status, "recovery" for one out of a bad status to a
    better one, None otherwise (e.g. no_data to on_track)."""
    new_status = Status(new)
    old_status = None if previous is None else Status(previous)
    worse = old_status is None or status_severity(new_status) > status_severity(old_status)
    if new_status in BAD_STATUSES and worse:
        return "slip"
    if old_status in BAD_STATUSES and status_severity(new_status) < status_severity(old_status):
        return "recovery"
    return None


def _subject_of(event: CloudEvent) -> str:
    data = event.data
    if isinstance(data, KpiObserved):
        return data.kpi_id
    if isinstance(data, MilestoneReported):
        return data.milestone_id
    return event.subject


def _raw_document(event: CloudEvent) -> Document:
    data = event.data
    as_of = getattr(data, "as_of", None)
    return {
        "_id": event.dedup_key,
        "event_id": event.id,
        "source": event.source,
        "type": event.type,
        "subject_id": _subject_of(event),
        "as_of": as_of.isoformat() if as_of else None,
        "time": event.time,
        "data": event.data.model_dump(mode="json") if hasattr(event.data, "model_dump") else None,
    }

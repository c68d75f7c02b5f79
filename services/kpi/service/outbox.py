"""Outbox publishing: the status changes a stored state version carries go to the status topic.

A version and its status changes are stored together (one insert); publishing comes after:
record the transitions (the open-data export), publish, wait for Kafka's acknowledgement, then
record the acknowledgement. A crash in between leaves the version unacknowledged; it is published
again when the states are next loaded (its event ids are deterministic, so downstream recognises
a status change published twice).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import structlog

from services.kpi.domain.transition import NumberedChange
from services.kpi.metrics import KpiMetrics
from services.kpi.ports import PublishedEvent, StateRepository, StateVersion, StatusSink
from shared.events.contracts import (
    BAD_STATUSES,
    KpiStatusChanged,
    Status,
    new_status_event,
    status_severity,
)
from shared.logs import caused_by

log = structlog.stdlib.get_logger("kpi")


def status_event(numbered: NumberedChange, time: datetime) -> PublishedEvent:
    """A status change as the CloudEvent published on the status topic (JSON)."""
    event = numbered.change
    change = KpiStatusChanged(
        kpi_id=event.subject_id,
        kind=event.subject_kind.value,
        measure_id=numbered.measure_id,
        ministries=list(numbered.ministries),
        previous_status=(
            None if event.previous_status is None else Status(event.previous_status.value)
        ),
        status=Status(event.new_status.value),
        episode_id=event.episode_id,
        evaluated_on=event.evaluated_on,
        explanation=event.explanation.model_dump(mode="json"),
    )
    return new_status_event(change, event_id=numbered.event_id, time=time).to_json_dict()


@dataclass
class OutboxPublisher:
    repository: StateRepository
    publisher: StatusSink
    metrics: KpiMetrics
    # Versions stored whose status changes are not yet acknowledged, oldest first.
    pending: list[StateVersion] = field(default_factory=list)

    def add(self, versions: list[StateVersion]) -> None:
        self.pending.extend(v for v in versions if v.outbox)

    async def publish_pending(self) -> None:
        """Record, publish and acknowledge the status changes of unacknowledged versions."""
        if not self.pending:
            return
        pending = self.pending
        events = [event for version in pending for event in version.outbox]
        await self.repository.record_transitions(pending)
        await self.publisher.publish(events)
        await self.repository.acknowledge(pending)
        self.pending = []
        for event in events:
            self._count_transition(event)

    def _count_transition(self, event: PublishedEvent) -> None:
        data = event["data"]
        self.metrics.transitions.labels(
            from_status=data.get("previous_status") or "none", to_status=data["status"]
        ).inc()
        direction = _direction(data.get("previous_status"), data["status"])
        # Keep the by-status gauge current between sweeps (which recount from the states).
        for ministry in data.get("ministries") or ["unassigned"]:
            if direction is not None:
                counter = self.metrics.slips if direction == "slip" else self.metrics.recoveries
                counter.labels(ministry=ministry, kind=data["kind"], status=data["status"]).inc()
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
            caused_by=caused_by(data.get("explanation")),
            previous_status=data.get("previous_status"),
            status=data["status"],
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

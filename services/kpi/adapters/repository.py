"""MongoDB persistence of the kpi service: raw observations, versioned per-subject state.

Every write is an insert: FerretDB (the MongoDB-wire server the local stack runs) executes an
update or delete, even by ``_id``, as a scan of the whole collection, while inserts are cheap.

- ``kpi_observations``: every KPI observation and milestone report, ``_id`` = CloudEvents
  source + id, so a redelivered or resent event is stored once (history for ``as_of`` queries and
  replay checks).
- ``kpi_states``: versions of each KPI's/milestone's state, ``_id`` = ``<subject>@<version>``:
  the engine's bounded aggregate, the episode, the latest evaluation, and the ``outbox`` of
  status changes this version produced. Writing a version is one atomic insert, so a state and
  its status changes are stored together or not at all; a second writer of the same version
  fails on the unique ``_id``. Each version records when it was written and its subject's
  partition: compaction copies the live versions and deletes what was written before.
- ``kpi_outbox_acks``: one record per version whose outbox Kafka acknowledged.
- ``kpi_transitions``: every status change (the open-data export), ``_id`` = status event id.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Collection, Sequence
from datetime import date, datetime
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError, ExecutionTimeout

from services.kpi.domain.episodes import EpisodeState
from services.kpi.domain.model import (
    UNKNOWN_ARRIVAL,
    AssessmentRating,
    Evaluation,
    SelfAssessment,
    Status,
    SubjectKind,
)
from services.kpi.domain.state import KpiState, MilestoneState
from services.kpi.domain.transition import SubjectState
from services.kpi.ports import (
    HistoryReadTooLong,
    ReceivedAssessment,
    ReceivedEvent,
    StateVersion,
    StoredEvent,
    SubjectStatus,
    VersionConflictError,
)
from services.kpi.service.intake import received_event
from shared.events.cloudevents import CloudEvent

OBSERVATIONS = "kpi_observations"
STATES = "kpi_states"
OUTBOX_ACKS = "kpi_outbox_acks"
TRANSITIONS = "kpi_transitions"
ASSESSMENTS = "kpi_assessments"

Document = dict[str, Any]
DUPLICATE_KEY = 11000
# What history readers need of an observation, and how many are decoded per round trip.
OBSERVATION_FIELDS = {"event_id": 1, "as_of": 1, "time": 1, "data": 1}
OBSERVATION_BATCH = 500

__all__ = ["HistoryReadTooLong", "KpiRepository", "VersionConflictError", "ensure_indexes"]


def version_id(subject_id: str, version: int) -> str:
    return f"{subject_id}@{version:010d}"


def state_document(state: SubjectState) -> Document:
    """The fields of a state version that hold the subject's state."""
    return {
        "subject_id": state.subject_id,
        "kind": state.kind.value,
        "measure_id": state.measure_id,
        "ministries": list(state.ministries),
        "aggregate": state.aggregate.model_dump(mode="json"),
        "episode": state.episode.model_dump(mode="json"),
        "evaluation": state.evaluation.model_dump(mode="json"),
        "status": state.evaluation.status.value,
        "seq": state.seq,
    }


def state_from_document(doc: Document) -> SubjectState:
    kind = SubjectKind(doc["kind"])
    aggregate: KpiState | MilestoneState = (
        KpiState.model_validate(doc["aggregate"])
        if kind is SubjectKind.KPI
        else MilestoneState.model_validate(doc["aggregate"])
    )
    return SubjectState(
        subject_id=doc["subject_id"],
        kind=kind,
        measure_id=doc.get("measure_id") or "",
        ministries=tuple(doc.get("ministries") or ()),
        aggregate=aggregate,
        episode=EpisodeState.model_validate(doc["episode"]),
        evaluation=Evaluation.model_validate(doc["evaluation"]),
        seq=int(doc["seq"]),
    )


def version_document(version: StateVersion) -> Document:
    """A state version as stored in kpi_states."""
    return {
        "_id": version_id(version.subject_id, version.version),
        "version": version.version,
        **state_document(version.state),
        "outbox": list(version.outbox),
        "has_outbox": bool(version.outbox),
        "updated_at": version.updated_at,
        "written_at": version.written_at,
        "partition": version.partition,
    }


def version_from_document(doc: Document) -> StateVersion:
    return StateVersion(
        state=state_from_document(doc),
        version=int(doc["version"]),
        outbox=tuple(doc.get("outbox") or ()),
        updated_at=doc["updated_at"],
        written_at=doc["written_at"],
        partition=doc.get("partition"),
    )


def _subject_status(doc: Document) -> SubjectStatus:
    return SubjectStatus(
        subject_id=doc["subject_id"],
        kind=SubjectKind(doc["kind"]),
        status=Status(doc["status"]),
        measure_id=doc.get("measure_id") or "",
        ministries=tuple(doc.get("ministries", [])),
    )


def event_document(event: ReceivedEvent) -> Document:
    """A received observation or report as stored in kpi_observations."""
    return {
        "_id": event.key,
        "event_id": event.event_id,
        "source": event.source,
        "type": event.type,
        "subject_id": event.subject_id,
        "as_of": event.as_of.isoformat() if event.as_of else None,
        "time": event.time,
        "arrival": event.arrival,
        "data": None if event.data is None else dict(event.data),
    }


def observation_document(event: CloudEvent, now: datetime) -> Document:
    """The document the kpi service stores in kpi_observations for `event` (benchmarks fill
    the collection with them)."""
    return event_document(received_event(event, now))


def _stored_event(doc: Document) -> StoredEvent:
    return StoredEvent(
        event_id=doc["event_id"],
        as_of=date.fromisoformat(doc["as_of"]),
        time=doc["time"],
        # Not among OBSERVATION_FIELDS: history reads order revisions by time and id.
        arrival=doc.get("arrival", UNKNOWN_ARRIVAL),
        data=doc["data"],
    )


def _assessment(doc: Document | None) -> SelfAssessment | None:
    if doc is None:
        return None
    return SelfAssessment(
        event_id=doc["event_id"],
        measure_id=doc["measure_id"],
        rating=AssessmentRating(doc["rating"]),
        as_of=date.fromisoformat(doc["as_of"]),
        received_at=doc["time"],
        comment=doc.get("narrative"),
    )


def latest_versions(documents: list[Document]) -> dict[str, Document]:
    """The newest version per subject among state versions (older ones await pruning)."""
    latest: dict[str, Document] = {}
    for doc in documents:
        current = latest.get(doc["subject_id"])
        if current is None or doc["version"] > current["version"]:
            latest[doc["subject_id"]] = doc
    return latest


async def ensure_indexes(db: AsyncDatabase[Document]) -> None:
    await db[OBSERVATIONS].create_index([("subject_id", 1), ("as_of", 1)])
    await db[STATES].create_index([("subject_id", 1), ("version", -1)])
    await db[STATES].create_index([("has_outbox", 1)])
    await db[STATES].create_index([("measure_id", 1)])
    await db[TRANSITIONS].create_index([("subject_id", 1), ("seq", 1)])
    await db[ASSESSMENTS].create_index([("measure_id", 1), ("as_of", -1)])


class KpiRepository:
    """The StateRepository and EventStore ports on MongoDB (FerretDB), and the document reads
    the routes render as stored."""

    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._db = db

    # --- EventStore ---------------------------------------------------------------------------

    async def store_events(self, events: Sequence[ReceivedEvent]) -> dict[str, int]:
        """Insert raw events; ones already stored (same source + id) are ignored. Returns the
        arrival each already stored one was first stored with, by key."""
        duplicates = await self._insert_ignoring_duplicates(
            OBSERVATIONS, [event_document(e) for e in events]
        )
        if not duplicates:
            return {}
        cursor = self._db[OBSERVATIONS].find({"_id": {"$in": duplicates}}, {"arrival": 1})
        return {doc["_id"]: int(doc.get("arrival", -1)) async for doc in cursor}

    async def store_assessments(self, assessments: Sequence[ReceivedAssessment]) -> None:
        await self._insert_ignoring_duplicates(
            ASSESSMENTS,
            [
                {
                    "_id": a.key,
                    "event_id": a.event_id,
                    "measure_id": a.measure_id,
                    "rating": a.rating,
                    "as_of": a.as_of.isoformat(),
                    "narrative": a.narrative,
                    "time": a.time,
                }
                for a in assessments
            ],
        )

    async def history(
        self,
        subject_id: str,
        limit: int,
        until: date | None = None,
        *,
        max_time_ms: int | None = None,
    ) -> list[StoredEvent]:
        """The subject's latest `limit` stored events (with as_of <= `until` if given), in
        ascending as_of order.

        Served by the `(subject_id, as_of)` index on MongoDB (FerretDB scans: callers bound how
        many run at once, and `max_time_ms` bounds what one may cost the server: beyond it,
        HistoryReadTooLong). Only the fields readers use are returned, in batches of a bounded
        size, so decoding never holds the event loop for long."""
        query: Document = {"subject_id": subject_id}
        if until is not None:
            query["as_of"] = {"$lte": until.isoformat()}
        cursor = (
            self._db[OBSERVATIONS]
            .find(query, OBSERVATION_FIELDS)
            .sort([("as_of", -1), ("_id", -1)])
            .limit(limit)
            .batch_size(OBSERVATION_BATCH)
        )
        if max_time_ms is not None:
            cursor = cursor.max_time_ms(max_time_ms)
        try:
            latest = [_stored_event(doc) async for doc in cursor]
        except ExecutionTimeout as error:
            raise HistoryReadTooLong(
                f"reading {subject_id!r}'s history took longer than {max_time_ms} ms"
            ) from error
        return latest[::-1]

    async def latest_assessment(self, measure_id: str) -> SelfAssessment | None:
        cursor = self._db[ASSESSMENTS].find({"measure_id": measure_id})
        cursor = cursor.sort([("as_of", -1), ("time", -1), ("event_id", -1)]).limit(1)
        return _assessment(next(iter([doc async for doc in cursor]), None))

    async def latest_assessments(self, measure_ids: Sequence[str]) -> dict[str, SelfAssessment]:
        latest: dict[str, Document] = {}
        cursor = self._db[ASSESSMENTS].find({"measure_id": {"$in": list(measure_ids)}})
        async for doc in cursor:
            key = (doc["as_of"], doc["time"], doc["event_id"])
            current = latest.get(doc["measure_id"])
            if current is None or key > (current["as_of"], current["time"], current["event_id"]):
                latest[doc["measure_id"]] = doc
        return {m: a for m, doc in latest.items() if (a := _assessment(doc)) is not None}

    # --- StateRepository ----------------------------------------------------------------------

    async def iter_versions(self) -> AsyncIterator[StateVersion]:
        async for doc in self._db[STATES].find({}):
            yield version_from_document(doc)

    async def unacknowledged(self, versions: Collection[StateVersion]) -> list[StateVersion]:
        if not versions:
            return []
        acknowledged = {doc["_id"] async for doc in self._db[OUTBOX_ACKS].find({}, {"_id": 1})}
        return [v for v in versions if version_id(v.subject_id, v.version) not in acknowledged]

    async def insert(self, versions: Sequence[StateVersion]) -> None:
        """Store new state versions; raises VersionConflictError for versions already stored."""
        if not versions:
            return
        duplicates = await self._insert_ignoring_duplicates(
            STATES, [version_document(v) for v in versions]
        )
        if duplicates:
            raise VersionConflictError(duplicates)

    async def acknowledge(self, versions: Sequence[StateVersion]) -> None:
        await self._insert_ignoring_duplicates(
            OUTBOX_ACKS,
            [
                {
                    "_id": version_id(v.subject_id, v.version),
                    "written_at": v.written_at,
                    "partition": v.partition,
                }
                for v in versions
            ],
        )

    async def record_transitions(self, versions: Sequence[StateVersion]) -> None:
        await self._insert_ignoring_duplicates(
            TRANSITIONS,
            [
                {
                    "_id": event["id"],
                    "subject_id": version.subject_id,
                    "seq": int(event["id"].rsplit(":", 1)[1]),
                    "event": event,
                }
                for version in versions
                for event in version.outbox
            ],
        )

    async def delete_written_before(
        self, cutoff: datetime, partitions: Collection[int] | None
    ) -> None:
        """Compaction: delete the state versions (and their acknowledgements) written before
        `cutoff` in `partitions` (None: all). One statement per collection, with comparisons
        FerretDB evaluates cheaply during its scan."""
        query: Document = {"written_at": {"$lt": cutoff}}
        if partitions is not None:
            query["partition"] = {"$in": sorted(partitions)}
        await self._db[STATES].delete_many(query)
        await self._db[OUTBOX_ACKS].delete_many(query)

    async def latest(self, subject_id: str) -> SubjectState | None:
        doc = await self.state(subject_id)
        return None if doc is None else state_from_document(doc)

    async def statuses_for_measure(self, measure_id: str) -> list[SubjectStatus]:
        cursor = self._db[STATES].find({"measure_id": measure_id})
        latest = latest_versions([doc async for doc in cursor])
        return [_subject_status(doc) for doc in latest.values()]

    async def statuses_for_ministry(self, ministry: str) -> list[SubjectStatus]:
        cursor = self._db[STATES].find({"ministries": ministry})
        latest = latest_versions([doc async for doc in cursor])
        return [_subject_status(doc) for doc in latest.values()]

    # --- documents the routes and replay render as stored -------------------------------------

    async def all_states(self) -> dict[str, Document]:
        """The latest state of every subject, by subject id."""
        return latest_versions([doc async for doc in self._db[STATES].find({})])

    async def state(self, subject_id: str) -> Document | None:
        cursor = self._db[STATES].find({"subject_id": subject_id})
        return latest_versions([doc async for doc in cursor]).get(subject_id)

    async def transitions(self, limit: int, after_id: str | None = None) -> list[Document]:
        """Status transitions in a stable order (by `_id`), for paging the open-data export."""
        query: Document = {"_id": {"$gt": after_id}} if after_id else {}
        cursor = self._db[TRANSITIONS].find(query).sort("_id", 1).limit(limit)
        return [doc async for doc in cursor]

    async def _insert_ignoring_duplicates(
        self, collection: str, documents: list[Document]
    ) -> list[Any]:
        """Insert what is new; the `_id`s of the documents that were already there."""
        if not documents:
            return []
        try:
            await self._db[collection].insert_many(documents, ordered=False)
        except BulkWriteError as error:
            errors = error.details.get("writeErrors", [])
            if any(e.get("code") != DUPLICATE_KEY for e in errors):
                raise
            return list(dict.fromkeys(documents[e["index"]]["_id"] for e in errors))
        return []

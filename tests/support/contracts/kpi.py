"""The contracts of the kpi service's ports (services/kpi/ports.py): what every implementation
must do, the MongoDB adapters (tests/integration/test_kpi_adapters_contract.py) and the in-memory
ones (tests/unit/kpi/test_memory_adapters.py) alike.

Each contract is a base class whose tests use a fixture named after the port; only the `Test*`
subclasses are collected.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import pytest

from services.kpi.domain.divergence import DivergenceRecord
from services.kpi.domain.model import (
    Baseline,
    Direction,
    KpiDefinition,
    Observation,
    SelfAssessment,
    Status,
    SubjectKind,
    Target,
)
from services.kpi.domain.transition import SubjectState, advance
from services.kpi.ports import (
    Catalogue,
    DivergenceStore,
    EventStore,
    OwnershipLedger,
    ReceivedAssessment,
    ReceivedEvent,
    StateCache,
    StateRepository,
    StateVersion,
    VersionConflictError,
)
from shared.events.contracts import DivergenceLevel, ItemOwnersChanged

# Whole milliseconds: what MongoDB keeps of a datetime.
WRITTEN = datetime(2025, 6, 1, 9, 30, 0, 123000, tzinfo=UTC)
LATER = datetime(2025, 6, 2, 9, 30, tzinfo=UTC)
TODAY = date(2025, 6, 1)


def definition(
    subject_id: str, measure_id: str = "m.1", ministries: tuple[str, ...] = ("digital",)
) -> KpiDefinition:
    return KpiDefinition(
        id=subject_id,
        direction=Direction.INCREASE,
        measure_id=measure_id,
        ministries=ministries,
        baseline=Baseline(value=0.0, as_of=date(2021, 3, 31)),
        targets=(Target(value=100.0, deadline=date(2031, 3, 31)),),
    )


def subject_state(
    subject_id: str,
    value: float | None = None,
    measure_id: str = "m.1",
    ministries: tuple[str, ...] = ("digital",),
) -> SubjectState:
    events = (
        []
        if value is None
        else [
            Observation(
                event_id=f"e-{subject_id}-{value:g}",
                value=value,
                as_of=date(2025, 3, 31),
                received_at=WRITTEN,
            )
        ]
    )
    state = advance(definition(subject_id, measure_id, ministries), None, events, TODAY).state
    assert state is not None
    return state


def version(
    subject_id: str,
    number: int = 1,
    *,
    value: float | None = None,
    outbox: bool = False,
    written_at: datetime = WRITTEN,
    partition: int | None = 0,
    measure_id: str = "m.1",
    ministries: tuple[str, ...] = ("digital",),
) -> StateVersion:
    state = subject_state(subject_id, value, measure_id=measure_id, ministries=ministries)
    events = (
        ({"id": f"status:{subject_id}:{number}", "data": {"status": "on_track"}},) if outbox else ()
    )
    return StateVersion(
        state=state,
        version=number,
        outbox=events,
        updated_at=written_at,
        written_at=written_at,
        partition=partition,
    )


async def all_versions(repository: StateRepository) -> list[StateVersion]:
    return sorted(
        [v async for v in repository.iter_versions()], key=lambda v: (v.subject_id, v.version)
    )


class StateCacheContract:
    """The in-memory cache of the latest state version per subject."""

    def test_a_version_comes_back_equal(self, state_cache: StateCache) -> None:
        """What goes in comes out: every field, the aware datetimes, the outbox."""
        stored = version("kpi.a", 1, value=40.0, outbox=True)
        state_cache.put(stored)
        assert state_cache.get("kpi.a") == stored
        assert state_cache.get("kpi.missing") is None

    def test_put_replaces_the_subjects_version_and_summary(self, state_cache: StateCache) -> None:
        """A newer version replaces the older one; the summary names its version and status."""
        state_cache.put(version("kpi.a", 1, ministries=("digital", "mic")))
        state_cache.put(version("kpi.b", 3))
        state_cache.put(version("kpi.a", 2, value=100.0, ministries=("digital", "mic")))
        summary = state_cache.summary("kpi.a")
        assert summary is not None
        assert (summary.version, summary.status, summary.kind) == (2, "achieved", "kpi")
        assert summary.ministries == ("digital", "mic")
        assert len(state_cache) == 2
        assert sorted(s.subject_id for s in state_cache.summaries()) == ["kpi.a", "kpi.b"]

    def test_loading_versions_in_any_order_keeps_the_latest(self, state_cache: StateCache) -> None:
        """put_if_newer ignores an older version arriving after a newer one."""
        for number in (2, 1, 3):
            state_cache.put_if_newer(version("kpi.a", number))
        latest = state_cache.get("kpi.a")
        assert latest is not None
        assert latest.version == 3


class StateRepositoryContract:
    """Versions of each subject's state: inserts only, a version stored once."""

    async def test_inserted_versions_come_back_equal(
        self, state_repository: StateRepository
    ) -> None:
        """Every version inserted is listed, whole, superseded ones included."""
        stored = [
            version("kpi.a", 1, outbox=True),
            version("kpi.a", 2, value=50.0),
            version("kpi.b", 1),
        ]
        await state_repository.insert(stored)
        assert await all_versions(state_repository) == stored

    async def test_a_version_stored_twice_is_a_conflict_and_the_rest_get_in(
        self, state_repository: StateRepository
    ) -> None:
        """A second writer of a version is refused (VersionConflictError, naming it); the other
        versions of its batch are stored."""
        await state_repository.insert([version("kpi.a", 1)])
        with pytest.raises(VersionConflictError) as raised:
            await state_repository.insert([version("kpi.a", 1, value=9.0), version("kpi.b", 1)])
        assert len(raised.value.versions) == 1
        assert "kpi.a" in raised.value.versions[0]
        assert [(v.subject_id, v.version) for v in await all_versions(state_repository)] == [
            ("kpi.a", 1),
            ("kpi.b", 1),
        ]
        kept = (await all_versions(state_repository))[0]
        assert kept.state.aggregate == version("kpi.a", 1).state.aggregate

    async def test_an_acknowledged_outbox_is_no_longer_pending(
        self, state_repository: StateRepository
    ) -> None:
        """Of the versions with an outbox, those acknowledged are not listed as pending, even
        when acknowledged twice; transitions are recorded idempotently."""
        first, second = version("kpi.a", 1, outbox=True), version("kpi.b", 1, outbox=True)
        await state_repository.insert([first, second])
        assert await state_repository.unacknowledged([first, second]) == [first, second]
        await state_repository.record_transitions([first])
        await state_repository.record_transitions([first])
        await state_repository.acknowledge([first])
        await state_repository.acknowledge([first])
        assert await state_repository.unacknowledged([first, second]) == [second]

    async def test_compaction_deletes_what_was_written_before_in_the_partitions_named(
        self, state_repository: StateRepository
    ) -> None:
        """Versions written before the cutoff go, in the partitions named only; their
        acknowledgements go with them."""
        old_mine = version("kpi.a", 1, outbox=True, partition=0)
        old_theirs = version("kpi.b", 1, partition=1)
        new_mine = version("kpi.a", 2, written_at=LATER, partition=0)
        await state_repository.insert([old_mine, old_theirs, new_mine])
        await state_repository.acknowledge([old_mine])
        await state_repository.delete_written_before(LATER, {0})
        assert await all_versions(state_repository) == [new_mine, old_theirs]
        # Its acknowledgement went too: stored again, it would be pending.
        assert await state_repository.unacknowledged([old_mine]) == [old_mine]
        await state_repository.delete_written_before(LATER, None)
        assert await all_versions(state_repository) == [new_mine]

    async def test_reads_see_each_subjects_latest_version(
        self, state_repository: StateRepository
    ) -> None:
        """The latest state, and the statuses by measure and by ministry, are the newest
        version's."""
        await state_repository.insert(
            [
                version("kpi.a", 1, measure_id="m.1", ministries=("digital",)),
                version("kpi.a", 2, value=100.0, measure_id="m.1", ministries=("digital",)),
                version("kpi.b", 1, measure_id="m.2", ministries=("digital", "mic")),
            ]
        )
        latest = await state_repository.latest("kpi.a")
        assert latest is not None
        assert latest.evaluation.status is Status.ACHIEVED
        assert await state_repository.latest("kpi.none") is None
        by_measure = await state_repository.statuses_for_measure("m.1")
        assert [(s.subject_id, s.status, s.kind) for s in by_measure] == [
            ("kpi.a", Status.ACHIEVED, SubjectKind.KPI)
        ]
        by_ministry = await state_repository.statuses_for_ministry("mic")
        assert [(s.subject_id, s.measure_id, s.ministries) for s in by_ministry] == [
            ("kpi.b", "m.2", ("digital", "mic"))
        ]


def received(key: str, as_of: date, arrival: int = 5, subject_id: str = "kpi.a") -> ReceivedEvent:
    return ReceivedEvent(
        key=key,
        event_id=key,
        source="/ministries/digital",
        type="shinchoku.kpi.observed.v1",
        subject_id=subject_id,
        as_of=as_of,
        time=WRITTEN,
        arrival=arrival,
        data={"kpi_id": subject_id, "value": 1.0, "as_of": as_of.isoformat()},
    )


def assessment(
    key: str, measure_id: str, as_of: date, rating: str = "on_track"
) -> ReceivedAssessment:
    return ReceivedAssessment(
        key=key,
        event_id=key,
        measure_id=measure_id,
        rating=rating,
        as_of=as_of,
        narrative=None,
        time=WRITTEN,
    )


class EventStoreContract:
    """The events received, each kept once."""

    async def test_an_event_is_stored_once_and_keeps_its_first_arrival(
        self, event_store: EventStore
    ) -> None:
        """Storing an event again stores nothing and answers the arrival it was first stored
        with; new events get no answer."""
        assert await event_store.store_events([received("e1", date(2025, 1, 1), arrival=3)]) == {}
        again = await event_store.store_events(
            [received("e1", date(2025, 1, 1), arrival=9), received("e2", date(2025, 2, 1))]
        )
        assert again == {"e1": 3}
        assert [e.event_id for e in await event_store.history("kpi.a", limit=10)] == ["e1", "e2"]

    async def test_history_is_the_latest_events_up_to_a_date_oldest_first(
        self, event_store: EventStore
    ) -> None:
        """The newest `limit` events of the subject (up to `until`), in ascending as_of."""
        days = [date(2024, month, 1) for month in range(1, 7)]
        await event_store.store_events([received(f"e{d.month}", d) for d in days])
        await event_store.store_events([received("other", date(2024, 6, 1), subject_id="kpi.b")])
        latest = await event_store.history("kpi.a", limit=3)
        assert [e.as_of for e in latest] == days[3:]
        until = await event_store.history("kpi.a", limit=2, until=date(2024, 3, 15))
        assert [e.as_of for e in until] == days[1:3]
        assert until[0].data["kpi_id"] == "kpi.a"
        assert until[0].time == WRITTEN

    async def test_the_latest_assessment_is_the_latest_as_of(self, event_store: EventStore) -> None:
        """Per measure, the self-assessment with the latest as_of counts; one stored twice is
        kept once."""
        await event_store.store_assessments(
            [
                assessment("a1", "m.1", date(2025, 3, 31), "on_track"),
                assessment("a2", "m.1", date(2025, 6, 30), "at_risk"),
                assessment("a3", "m.2", date(2025, 1, 31)),
            ]
        )
        await event_store.store_assessments([assessment("a2", "m.1", date(2025, 6, 30), "at_risk")])
        latest = await event_store.latest_assessment("m.1")
        assert isinstance(latest, SelfAssessment)
        assert (latest.event_id, latest.as_of) == ("a2", date(2025, 6, 30))
        assert await event_store.latest_assessment("m.none") is None
        both = await event_store.latest_assessments(["m.1", "m.2", "m.none"])
        assert {m: a.event_id for m, a in both.items()} == {"m.1": "a2", "m.2": "a3"}


class DivergenceStoreContract:
    """The divergence recorded per measure."""

    async def test_a_record_put_comes_back_and_marks_the_measure_assessed(
        self, divergence_store: DivergenceStore
    ) -> None:
        record = DivergenceRecord(
            measure_id="m.1", divergence=DivergenceLevel.MINOR, episode_id="m.1:1", episodes=1
        )
        assert await divergence_store.get("m.1") is None
        await divergence_store.put("m.1", record)
        await divergence_store.put("m.1", record.model_copy(update={"version": 2}))
        assert await divergence_store.get("m.1") == record.model_copy(update={"version": 2})
        assert await divergence_store.assessed(["m.1", "m.2"]) == {"m.1"}


# --- the catalogue ------------------------------------------------------------------------------


def catalogue_item(item_id: str, measure_id: str, state: str = "active") -> dict[str, Any]:
    """A KPI document as the catalogue loader writes it (the fields the kpi service reads)."""
    return {
        "_id": item_id,
        "id": item_id,
        "kind": "kpi",
        "measure_id": measure_id,
        "unit": "%",
        "direction": "increase",
        "accumulation": "level",
        "ministries": ["digital"],
        "state": state,
        "baseline": {"value": 10.0, "as_of": "2021-03-31"},
        "targets": [{"value": 90.0, "deadline": "2031-03-31", "deadline_text": "2030年度末"}],
    }


# What the `catalogue` and `ownership_ledger` fixtures hold.
CATALOGUE_ITEMS = [catalogue_item("kpi.active", "m.1"), catalogue_item("kpi.old", "m.2", "retired")]
CATALOGUE_MEASURES: list[dict[str, Any]] = [
    {"_id": "m.1", "id": "m.1", "ministries": ["digital", "mic"]}
]


class CatalogueContract:
    """The kpi service's copy of the catalogue, read as definitions (holding CATALOGUE_ITEMS
    and CATALOGUE_MEASURES)."""

    async def test_all_entries_are_the_active_ones(self, catalogue: Catalogue) -> None:
        """Retired items are not swept; the entries carry definitions, facts and owners."""
        (entry,) = await catalogue.all_entries()
        assert entry.id == "kpi.active"
        assert entry.definition.measure_id == "m.1"
        assert entry.definition.ministries == ("digital",)
        assert entry.owners == frozenset({"digital"})
        assert not entry.facts.retired

    async def test_entries_by_id_include_retired_ones(self, catalogue: Catalogue) -> None:
        """Events about a retired item are still recorded: looked up by id it is found."""
        found = await catalogue.entries(["kpi.old", "kpi.none", "kpi.active"])
        assert sorted(found) == ["kpi.active", "kpi.old"]
        assert found["kpi.old"].facts.retired

    async def test_measures_and_the_measures_of_items(self, catalogue: Catalogue) -> None:
        measure = await catalogue.measure("m.1")
        assert measure is not None
        assert measure.owners == frozenset({"digital", "mic"})
        assert await catalogue.measure("m.none") is None
        assert await catalogue.measures_of(["kpi.active", "kpi.old", "kpi.none"]) == {"m.1", "m.2"}


@dataclass(frozen=True)
class LedgerAndCatalogue:
    """An ownership ledger and the catalogue copy it changes."""

    ledger: OwnershipLedger
    catalogue: Catalogue


def owners_changed(change_id: str, action: str, owners: list[str]) -> ItemOwnersChanged:
    return ItemOwnersChanged.model_validate(
        {
            "item_id": "kpi.active",
            "action": action,
            "owners": owners,
            "change_id": change_id,
            "reason": "reorganisation",
            "changed_by": "admin",
            "changed_at": WRITTEN,
        }
    )


class OwnershipLedgerContract:
    """Ownership changes applied to the catalogue copy, each once."""

    async def test_a_change_is_applied_once_and_a_reset_restores_the_release(
        self, ownership_ledger: LedgerAndCatalogue
    ) -> None:
        ledger, catalogue = ownership_ledger.ledger, ownership_ledger.catalogue
        assert await ledger.apply_received(owners_changed("c1", "set", ["mic"]), WRITTEN)
        assert not await ledger.apply_received(owners_changed("c1", "set", ["mic"]), WRITTEN)
        entry = (await catalogue.entries(["kpi.active"]))["kpi.active"]
        assert entry.definition.ministries == ("mic",)
        assert entry.owners == frozenset({"mic"})
        assert await ledger.apply_received(owners_changed("c2", "reset", ["digital"]), LATER)
        entry = (await catalogue.entries(["kpi.active"]))["kpi.active"]
        assert entry.definition.ministries == ("digital",)

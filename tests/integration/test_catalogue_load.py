"""Loading the plan catalogue into the real FerretDB: idempotent, retiring, refusing bad files."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from pymongo.asynchronous.database import AsyncDatabase

from shared.catalogue import Catalogue, CatalogueError, load_catalogue
from shared.catalogue.loader import load_into, validated_catalogue
from shared.catalogue.overrides import OwnershipStore
from shared.catalogue.validate import DEFAULT_CATALOGUE, DEFAULT_MINISTRIES
from shared.catalogue_store import ITEMS, MEASURES, MINISTRIES, VERSIONS, CatalogueStore
from shared.cli import main
from shared.mongo import MongoClient
from shared.settings import MongoSettings

pytestmark = pytest.mark.integration

Document = dict[str, Any]
NOW = datetime(2024, 4, 1, 9, 0, tzinfo=UTC)
REMOVED_KPI = "kpi.smart-city-regions"


@pytest.fixture(scope="module")
def catalogue() -> Catalogue:
    return load_catalogue()


@pytest.fixture
async def database(
    mongo: MongoClient, mongo_config: MongoSettings
) -> AsyncIterator[AsyncDatabase[Document]]:
    """A database of this test's own (the loader's effects are checked on every collection)."""
    name = f"{mongo_config.database}_load_{secrets.token_hex(3)}"
    yield mongo[name]
    for dropped in (name, f"{name}_ingest", f"{name}_alerts"):
        await mongo.drop_database(dropped)


def point_services_at(monkeypatch: pytest.MonkeyPatch, url: str, kpi_database: str) -> None:
    """kpi's database is `kpi_database`; ingest's and alerts' are beside it (the fixture drops
    them too)."""
    for service in ("ingest", "kpi", "alerts"):
        name = kpi_database if service == "kpi" else f"{kpi_database}_{service}"
        monkeypatch.setenv(f"SHINCHOKU_{service.upper()}_MONGO__URL", url)
        monkeypatch.setenv(f"SHINCHOKU_{service.upper()}_MONGO__DATABASE", name)


def raw_catalogue() -> Document:
    data: Document = yaml.safe_load(DEFAULT_CATALOGUE.read_text(encoding="utf-8"))
    return data


def write_catalogue(path: Path, data: Document) -> Path:
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


async def snapshot(db: AsyncDatabase[Document]) -> dict[str, dict[str, Document]]:
    return {
        name: {doc["_id"]: doc async for doc in db[name].find({})}
        for name in (ITEMS, MEASURES, MINISTRIES, VERSIONS)
    }


async def test_loading_the_real_catalogue_twice_writes_once(
    database: AsyncDatabase[Document], catalogue: Catalogue
) -> None:
    """The first load inserts every item, measure and ministry with its version; a second load
    of the same catalogue writes nothing (same documents, same loaded_at)."""
    first = await load_into(database, catalogue, now=NOW)
    n_items = len(catalogue.kpis) + len(catalogue.milestones)
    assert (first.items.inserted, first.measures.inserted, first.ministries.inserted) == (
        n_items,
        len(catalogue.measures),
        len(catalogue.ministries),
    )
    assert first.version_record == "inserted"
    item = await database[ITEMS].find_one({"_id": "kpi.5g-population-coverage"})
    assert item is not None
    assert item["state"] == "active"
    assert item["catalogue_version"] == catalogue.version
    assert item["section_path"] == catalogue.measure(item["measure_id"]).section_path
    assert [t["value"] for t in item["targets"]] == [95.0, 97.0, 99.0]
    before = await snapshot(database)

    second = await load_into(database, catalogue, now=NOW + timedelta(days=1))
    assert not second.changed
    assert (second.items.unchanged, second.measures.unchanged, second.ministries.unchanged) == (
        n_items,
        len(catalogue.measures),
        len(catalogue.ministries),
    )
    assert await snapshot(database) == before
    store = CatalogueStore(database.client, database.name)
    assert (await store.current_version() or {}).get("_id") == catalogue.version
    assert len(await store.all_items()) == n_items


async def test_a_kpi_absent_from_a_new_version_is_retired_with_its_history(
    database: AsyncDatabase[Document], catalogue: Catalogue, tmp_path: Path
) -> None:
    """Loading a new version without one KPI marks it retired (not deleted), leaves its
    observations alone and upserts only what changed; loading the old version revives it."""
    await load_into(database, catalogue, now=NOW)
    observations = [
        {"_id": f"/ministries/mlit:{i}", "subject_id": REMOVED_KPI, "as_of": "2023-03-31"}
        for i in range(3)
    ]
    await database["kpi_observations"].insert_many(observations)

    data = raw_catalogue()
    data["version"] = "2022.2-test"
    data["kpis"] = [k for k in data["kpis"] if k["id"] != REMOVED_KPI]
    changed_kpi = data["kpis"][0]
    changed_kpi["name_en"] = changed_kpi["name_en"] + " (revised)"
    newer = validated_catalogue(
        write_catalogue(tmp_path / "plan-next.yaml", data), DEFAULT_MINISTRIES, check_sources=False
    )
    report = await load_into(database, newer, now=NOW + timedelta(days=30))

    n_items = len(catalogue.kpis) + len(catalogue.milestones)
    assert report.items.retired == 1
    assert report.items.updated == 1
    assert report.items.unchanged == n_items - 2
    assert report.measures.written == 0
    retired = await database[ITEMS].find_one({"_id": REMOVED_KPI})
    assert retired is not None
    assert (retired["state"], retired["retired_in_version"]) == ("retired", "2022.2-test")
    assert retired["name_ja"]  # the definition is kept for the history
    assert await database["kpi_observations"].count_documents({"subject_id": REMOVED_KPI}) == 3
    revised = await database[ITEMS].find_one({"_id": changed_kpi["id"]})
    assert revised is not None
    assert revised["name_en"].endswith("(revised)")
    assert revised["catalogue_version"] == "2022.2-test"
    store = CatalogueStore(database.client, database.name)
    assert REMOVED_KPI not in {d["_id"] for d in await store.all_items()}
    assert (await store.item(REMOVED_KPI) or {}).get("state") == "retired"
    versions = {d["_id"]: d["current"] async for d in database[VERSIONS].find({})}
    assert versions == {catalogue.version: False, "2022.2-test": True}

    again = await load_into(database, newer, now=NOW + timedelta(days=31))
    assert not again.changed  # a retired entry stays retired without being rewritten

    back = await load_into(database, catalogue, now=NOW + timedelta(days=60))
    assert (back.items.updated, back.items.retired) == (2, 0)
    revived = await database[ITEMS].find_one({"_id": REMOVED_KPI})
    assert revived is not None
    assert revived["state"] == "active"
    assert "retired_in_version" not in revived


def broken_catalogue() -> Document:
    """Three independent problems in three entries."""
    data = raw_catalogue()
    del data["kpis"][0]["unit"]
    data["milestones"][1]["measure_id"] = "m.9-9.no-such-measure"
    data["measures"][2]["owners"][0]["code"] = "no_such_ministry"
    return data


async def test_an_invalid_file_reports_every_problem_and_loads_nothing(
    database: AsyncDatabase[Document],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    mongo_config: MongoSettings,
) -> None:
    """`shinchoku catalogue load` of a file with three problems exits 1, prints each with its
    entry id and field, and writes nothing to the database."""
    data = broken_catalogue()
    path = write_catalogue(tmp_path / "broken.yaml", data)
    with pytest.raises(CatalogueError) as caught:
        validated_catalogue(path, check_sources=False)
    found = {(p.entry_id, p.field) for p in caught.value.problems}
    expected = {
        (data["kpis"][0]["id"], "unit"),
        (data["milestones"][1]["id"], "measure_id"),
        (data["measures"][2]["id"], "owners.0"),
    }
    assert expected <= found

    point_services_at(monkeypatch, mongo_config.url, database.name)
    code = await asyncio.to_thread(main, ["catalogue", "load", str(path)])
    err = capsys.readouterr().err
    assert code == 1
    for entry_id, field in expected:
        assert f"{entry_id}: {field}: " in err
    assert "nothing loaded" in err
    assert await database.list_collection_names() == []


async def test_cli_load_then_reload_reports_the_counts(
    database: AsyncDatabase[Document],
    catalogue: Catalogue,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    mongo_config: MongoSettings,
) -> None:
    """`shinchoku catalogue load` (no file: the built-in catalogue) loads a copy into the
    database of each service that reads it (kpi's and ingest's, named by the variables those
    services read), says what it did for each; run again it reports no changes."""
    point_services_at(monkeypatch, mongo_config.url, database.name)
    n_items = len(catalogue.kpis) + len(catalogue.milestones)

    assert await asyncio.to_thread(main, ["catalogue", "load"]) == 0
    out = capsys.readouterr().out
    assert out.count(f"items:      {n_items} inserted, 0 updated, 0 unchanged, 0 retired") == 2
    assert f"measures:   {len(catalogue.measures)} inserted" in out
    assert f"ministries: {len(catalogue.ministries)} inserted" in out
    assert await database[ITEMS].count_documents({"state": "active"}) == n_items
    ingest_copy = database.client[f"{database.name}_ingest"]
    assert await ingest_copy[ITEMS].count_documents({"state": "active"}) == n_items
    alerts = database.client[f"{database.name}_alerts"]
    assert await alerts.list_collection_names() == []

    assert await asyncio.to_thread(main, ["catalogue", "load"]) == 0
    out = capsys.readouterr().out
    assert "no changes" in out
    assert f"items:      0 inserted, 0 updated, {n_items} unchanged, 0 retired" in out


async def test_cli_load_writes_ingests_run_time_owners_into_every_copy(
    database: AsyncDatabase[Document],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    mongo_config: MongoSettings,
) -> None:
    """The ownership record is ingest's: `shinchoku catalogue load` applies ingest's run-time
    overrides to kpi's copy too, even one kpi has not received (e.g. a kpi database rebuilt
    empty), so a load never hands kpi the release's owners for an overridden item."""
    point_services_at(monkeypatch, mongo_config.url, database.name)
    assert await asyncio.to_thread(main, ["catalogue", "load", "--no-sources"]) == 0
    ingest_copy = database.client[f"{database.name}_ingest"]
    item = "kpi.5g-population-coverage"
    await OwnershipStore(ingest_copy).set_owners(
        item, ["mic", "digital"], reason="co-reporting", changed_by="ops", now=NOW
    )
    assert (await database[ITEMS].find_one({"_id": item}) or {})["ministries"] == ["mic"]
    capsys.readouterr()

    assert await asyncio.to_thread(main, ["catalogue", "load", "--no-sources"]) == 0
    out = capsys.readouterr().out
    assert out.count("ownership overrides kept: 1") == 2
    for copy in (database, ingest_copy):
        stored = await copy[ITEMS].find_one({"_id": item})
        assert stored is not None
        assert stored["ministries"] == ["mic", "digital"]
        assert stored["catalogue_ministries"] == ["mic"]
        assert stored["ownership_override"]["reason"] == "co-reporting"

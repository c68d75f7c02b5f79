"""The kpi service's catalogue read API, in-process against the real FerretDB and Kafka."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from services.kpi.bootstrap import create_app
from services.kpi.settings import KpiSettings
from shared.catalogue import Catalogue, load_catalogue
from shared.catalogue.loader import load_into
from shared.catalogue_store import CatalogueStore
from shared.kafka import ensure_topics
from shared.mongo import MongoClient
from shared.settings import KafkaSettings, MongoSettings
from tests.support.stack import isolated_topics

pytestmark = pytest.mark.integration

PROBLEM_JSON = "application/problem+json"
RETIRED_ID = "kpi.api-test-retired"
PAGE = 25


@pytest.fixture(scope="module")
def catalogue() -> Catalogue:
    return load_catalogue()


@pytest.fixture(scope="module")
async def client(
    catalogue: Catalogue,
    mongo: MongoClient,
    mongo_config: MongoSettings,
    kafka: KafkaSettings,
    run_id: str,
) -> AsyncIterator[httpx.AsyncClient]:
    """The kpi app (lifespan running) over the catalogue loaded into a database and topics of
    this module's own, so the sweep's status events and the catalogue state stay private."""
    database = f"{mongo_config.database}_catapi"
    topics = isolated_topics(f"{run_id}-catapi")
    async with asyncio.timeout(60):
        await ensure_topics(kafka, topics)
    await load_into(mongo[database], catalogue, now=datetime.now(UTC))
    await CatalogueStore(mongo, database).upsert_item(
        {
            "_id": RETIRED_ID,
            "id": RETIRED_ID,
            "kind": "kpi",
            "measure_id": catalogue.measures[0].id,
            "section_path": catalogue.measures[0].section_path,
            "name_ja": "廃止された指標",
            "name_en": "Retired indicator",
            "unit": "%",
            "direction": "increase",
            "targets": [],
            "ministries": ["digital"],
            "state": "retired",
            "retired_in_version": "2022.2",
        }
    )
    settings = KpiSettings(
        kafka=kafka,
        topics=topics,
        mongo=MongoSettings(url=mongo_config.url, database=database),
        consumer_group=f"test-catapi-{run_id}",
        sweep_interval_s=3600.0,
    )
    app = create_app(settings)
    try:
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://kpi", timeout=30
            ) as http,
        ):
            yield http
    finally:
        await mongo.drop_database(database)


async def all_pages(client: httpx.AsyncClient, path: str, **params: Any) -> list[dict[str, Any]]:
    """Walk the pages (25 a page); every page reports the same total."""
    items: list[dict[str, Any]] = []
    totals = set()
    offset = 0
    while True:
        answer = await client.get(path, params={**params, "limit": PAGE, "offset": offset})
        assert answer.status_code == 200, answer.text
        body = answer.json()
        totals.add(body["total"])
        items.extend(body["items"])
        offset += PAGE
        if offset >= body["total"]:
            break
    assert totals == {len(items)}
    return items


def expected_measures(catalogue: Catalogue, ministry: str, section: str) -> list[str]:
    return sorted(
        m.id
        for m in catalogue.measures
        if ministry in m.ministries and m.section_path.startswith(section)
    )


def expected_items(
    catalogue: Catalogue, *, ministry: str | None = None, section: str = "", kind: str = ""
) -> list[str]:
    entries = catalogue.entries
    return sorted(
        e.id
        for e in entries
        if (ministry is None or ministry in catalogue.ministries_of(e))
        and catalogue.measure(e.measure_id).section_path.startswith(section)
        and (not kind or (kind == "kpi") == e.id.startswith("kpi."))
    )


async def test_measures_filter_by_ministry_and_section_across_pages(
    client: httpx.AsyncClient, catalogue: Catalogue
) -> None:
    """/v1/measures?ministry=digital&section=第６ lists exactly the catalogue's Digital Agency
    measures of 第６, in id order, over pages whose total agrees."""
    items = await all_pages(client, "/v1/measures", ministry="digital", section="第６")
    assert [m["id"] for m in items] == expected_measures(catalogue, "digital", "第６")
    assert items
    assert all(m["title_ja"] and m["title_en"] and m["sources"] for m in items)
    ascii_digit = (await client.get("/v1/measures", params={"section": "第6", "limit": 500})).json()
    fullwidth = (await client.get("/v1/measures", params={"section": "第６", "limit": 500})).json()
    assert ascii_digit["total"] == fullwidth["total"] > 0


async def test_measures_for_several_ministries_and_a_section_with_regex_characters(
    client: httpx.AsyncClient, catalogue: Catalogue
) -> None:
    """A repeated ministry parameter means any of them; a section such as `第６ 5.(1)` is a
    literal prefix (its dot and parentheses are not a pattern)."""
    section = "第６ 5.(1)"
    answer = await client.get(
        "/v1/measures",
        params=[("ministry", "mic"), ("ministry", "digital"), ("section", section), ("limit", 500)],
    )
    body = answer.json()
    expected = sorted(
        set(expected_measures(catalogue, "mic", section))
        | set(expected_measures(catalogue, "digital", section))
    )
    assert [m["id"] for m in body["items"]] == expected
    assert body["total"] == len(expected) > 0


async def test_measure_detail_lists_its_kpis_and_milestones(
    client: httpx.AsyncClient, catalogue: Catalogue
) -> None:
    """/v1/measures/{id} returns the measure with every KPI and milestone under it."""
    kpi = next(k for k in catalogue.kpis if k.id == "kpi.5g-population-coverage")
    answer = await client.get(f"/v1/measures/{kpi.measure_id}", params={"lang": "en"})
    assert answer.status_code == 200
    body = answer.json()
    measure = catalogue.measure(kpi.measure_id)
    assert body["title"] == measure.title_en
    assert body["section_path"] == measure.section_path
    own = {e.id for e in catalogue.entries if e.measure_id == measure.id}
    assert {i["id"] for i in body["kpis"]} == own
    assert all(i["name"] == i["name_en"] for i in body["kpis"])


async def test_kpis_filter_by_kind_ministry_and_section(
    client: httpx.AsyncClient, catalogue: Catalogue
) -> None:
    """/v1/kpis filters in the database by kind, ministry and section, totals included."""
    milestones = await all_pages(client, "/v1/kpis", kind="milestone", ministry="digital")
    assert [i["id"] for i in milestones] == expected_items(
        catalogue, ministry="digital", kind="milestone"
    )
    assert all(i["milestone_kind"] in {"deliver", "start"} for i in milestones)
    numeric = (
        await client.get("/v1/kpis", params={"kind": "kpi", "section": "第６", "limit": 500})
    ).json()
    assert [i["id"] for i in numeric["items"]] == expected_items(
        catalogue, section="第６", kind="kpi"
    )
    everything = (await client.get("/v1/kpis", params={"limit": 1})).json()
    assert everything["total"] == len(catalogue.kpis) + len(catalogue.milestones)


async def test_kpi_list_entries_carry_targets_units_sources_and_both_names(
    client: httpx.AsyncClient,
) -> None:
    """A listed KPI has its staged targets, unit, sources and names; `lang=ja` adds `name`."""
    answer = await client.get(
        "/v1/kpis", params={"kind": "kpi", "lang": "ja", "ministry": "mic", "limit": 500}
    )
    by_id = {i["id"]: i for i in answer.json()["items"]}
    coverage = by_id["kpi.5g-population-coverage"]
    assert coverage["unit"] == "%"
    assert [t["value"] for t in coverage["targets"]] == [95.0, 97.0, 99.0]
    assert coverage["sources"][0]["line"] > 0
    assert coverage["name"] == coverage["name_ja"]
    assert coverage["name_en"]
    assert "_id" not in coverage
    assert "content_hash" not in coverage


async def test_ministries_with_counts_and_section_filter(
    client: httpx.AsyncClient, catalogue: Catalogue
) -> None:
    """/v1/ministries lists every ministry in table order with what it owns; `section` keeps
    those owning a measure there."""
    ministries = await all_pages(client, "/v1/ministries", lang="en")
    assert [m["code"] for m in ministries] == [m.code for m in catalogue.ministries]
    digital = ministries[0]
    assert digital["name"] == digital["name_en"] == "Digital Agency"
    assert digital["name_ja"] == "デジタル庁"
    assert digital["measure_count"] == sum(
        1 for m in catalogue.measures if "digital" in m.ministries
    )
    assert digital["item_count"] == len(expected_items(catalogue, ministry="digital"))
    in_section = (await client.get("/v1/ministries", params={"section": "第６ 5.(3)"})).json()
    owners = {
        c
        for m in catalogue.measures
        if m.section_path.startswith("第６ 5.(3)")
        for c in m.ministries
    }
    assert {m["code"] for m in in_section["items"]} == owners
    assert in_section["total"] == len(owners) > 0


async def test_retired_entries_are_hidden_from_lists_but_still_served(
    client: httpx.AsyncClient,
) -> None:
    """A retired KPI is left out of /v1/kpis unless include_retired=true, and /v1/kpis/{id}
    still answers for it with state retired."""
    listed = (await client.get("/v1/kpis", params={"limit": 500})).json()
    assert RETIRED_ID not in {i["id"] for i in listed["items"]}
    with_retired = (
        await client.get("/v1/kpis", params={"limit": 500, "include_retired": "true"})
    ).json()
    assert RETIRED_ID in {i["id"] for i in with_retired["items"]}
    assert with_retired["total"] == listed["total"] + 1
    one = await client.get(f"/v1/kpis/{RETIRED_ID}")
    assert one.status_code == 200
    assert one.json()["state"] == "retired"


async def test_kpi_status_includes_the_catalogue_definition(client: httpx.AsyncClient) -> None:
    """GET /v1/kpis/{id} keeps its status fields and adds the definition: unit, baseline,
    targets, sources and both names."""
    answer = await client.get("/v1/kpis/kpi.gov-it-operating-cost")
    assert answer.status_code == 200
    body = answer.json()
    assert {"status", "evaluation", "episode", "observations"} <= set(body)
    assert body["observations"] == []
    assert body["unit"] == "JPY_100m"
    assert body["baseline"]["value"] == 5400.0
    (target,) = body["targets"]
    assert target["relative"] == {"base_fiscal_year": 2020, "change_ratio": -0.3}
    assert body["name_ja"]
    assert body["name_en"]
    assert len(body["sources"]) == 2


@pytest.mark.parametrize(
    ("path", "params", "field"),
    [
        ("/v1/kpis", {"limit": 0}, "query.limit"),
        ("/v1/kpis", {"limit": 501}, "query.limit"),
        ("/v1/measures", {"offset": -1}, "query.offset"),
        ("/v1/kpis", {"kind": "target"}, "query.kind"),
        ("/v1/measures", {"lang": "fr"}, "query.lang"),
        ("/v1/measures", {"ministry": "no_such_ministry"}, "ministry"),
        ("/v1/ministries", {"ministry": "no_such_ministry"}, "ministry"),
    ],
)
async def test_bad_parameters_are_422_problems_naming_the_field(
    client: httpx.AsyncClient, path: str, params: dict[str, Any], field: str
) -> None:
    """Bad limits, offsets, kinds, languages and ministry codes answer 422 problem details
    naming the parameter."""
    answer = await client.get(path, params=params)
    assert answer.status_code == 422
    assert answer.headers["content-type"] == PROBLEM_JSON
    assert field in {e["field"] for e in answer.json()["errors"]}


@pytest.mark.parametrize("path", ["/v1/measures/m.9-9.no-such-measure", "/v1/kpis/kpi.no-such"])
async def test_unknown_ids_are_404_problems(client: httpx.AsyncClient, path: str) -> None:
    """An unknown measure or KPI id answers 404 problem details."""
    answer = await client.get(path)
    assert answer.status_code == 404
    assert answer.headers["content-type"] == PROBLEM_JSON
    assert answer.json()["status"] == 404

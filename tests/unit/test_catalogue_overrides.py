"""Run-time ownership overrides as the loader and the admin API apply them (pure parts)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from services.ingest.adapters.catalogue import CachedCatalogue
from shared.catalogue.loader import content_hash
from shared.catalogue.overrides import apply_override, release_content
from shared.events.validation import owners_from_catalogue as owners_of

ITEM: dict[str, Any] = {
    "_id": "kpi.5g-population-coverage",
    "kind": "kpi",
    "ministries": ["mic"],
    "owners": [{"code": "mic", "basis": "inferred", "reason": "電波/5G are MIC's"}],
}
WHEN = datetime(2026, 12, 4, 9, 0, 0, 123456, tzinfo=UTC)
OVERRIDE = {"owners": ["mic", "digital"], "reason": "co-reporting", "changed_by": "ops"}


def override(changed_at: datetime) -> dict[str, Any]:
    return {**OVERRIDE, "changed_at": changed_at}


def test_an_override_puts_its_owners_in_force_and_keeps_the_release_beside_them() -> None:
    applied = apply_override(ITEM, override(WHEN))
    assert applied["ministries"] == ["mic", "digital"]
    assert applied["catalogue_ministries"] == ["mic"]
    assert applied["owners"] == ITEM["owners"]  # the plan's basis is unchanged
    assert applied["ownership_override"]["reason"] == "co-reporting"
    assert owners_of(applied) == {"mic", "digital"}
    assert release_content(applied) == ITEM


def test_the_content_hash_does_not_depend_on_where_the_time_was_read() -> None:
    """MongoDB gives back naive UTC times at millisecond precision: the item written by the
    admin API and the one the loader rebuilds from the stored override hash the same, so a
    reload writes nothing."""
    from_clock = apply_override(ITEM, override(WHEN))
    from_mongo = apply_override(ITEM, override(WHEN.replace(tzinfo=None, microsecond=123000)))
    assert content_hash(from_clock) == content_hash(from_mongo)


def test_owners_of_nothing_is_nobody() -> None:
    assert owners_of(None) == frozenset()
    assert owners_of({"ministries": []}) == frozenset()


async def test_the_cache_is_refreshed_after_its_ttl_or_when_invalidated() -> None:
    """A snapshot older than the TTL is reloaded; `invalidate` forces it at once."""
    now = [0.0]
    reads: list[int] = []

    class Collection:
        def __init__(self, docs: list[dict[str, Any]]) -> None:
            self.docs = docs

        def find(self, *_: Any) -> Any:
            reads.append(1)
            docs = list(self.docs)

            async def gen() -> Any:
                for d in docs:
                    yield d

            return gen()

    items = Collection([{**ITEM}])
    database = {"catalogue_items": items, "catalogue_measures": Collection([])}
    client = {"db": database}
    cache = CachedCatalogue(client, "db", ttl_s=5.0, monotonic=lambda: now[0])  # type: ignore[arg-type]
    assert (await cache.items([ITEM["_id"]]))[ITEM["_id"]].owners == {"mic"}
    items.docs = [{**ITEM, "ministries": ["mic", "digital"]}]
    now[0] = 4.9
    assert (await cache.items([ITEM["_id"]]))[ITEM["_id"]].owners == {"mic"}
    now[0] = 5.0
    assert (await cache.items([ITEM["_id"]]))[ITEM["_id"]].owners == {"mic", "digital"}
    items.docs = [{**ITEM, "ministries": ["moj"]}]
    cache.invalidate()
    assert (await cache.items([ITEM["_id"]]))[ITEM["_id"]].owners == {"moj"}

"""Load the validated catalogue into MongoDB: idempotent upserts, retirement instead of deletion.

`load_into` writes the collections `shared.catalogue_store` reads (see its docstring for the
document shapes). Every document's content (everything but the load metadata) is hashed; a
document whose hash and state are unchanged is not written at all, so loading the same catalogue
twice changes nothing. A document present in the database but absent from the catalogue being
loaded is marked ``state: "retired"`` with ``retired_in_version``, never deleted: the history
of a retired KPI in the ``kpi_*`` collections keeps its definition. A retired entry that comes
back is written again as active.

Run-time ownership overrides (`shared.catalogue.overrides`, set through the ingest admin API
or ``shinchoku catalogue set-owners``) win over the file: every item with an override is written
with the override's owners, and the report lists each one beside the release's owners, so a
reload never silently undoes a change an operator made. The overrides are those of the database
that owns the ownership record (ingest's: ``shinchoku catalogue load`` reads them there and
applies them to every copy it writes, kpi's included), or of the database written when none is
given.

The catalogue is validated first (`shared.catalogue.validate`); an invalid catalogue raises
`CatalogueError` listing every problem, and nothing is written. The version record is written
last, so a load interrupted half-way is completed by the next one.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from pymongo import ReplaceOne, UpdateOne
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase

from shared.catalogue.model import Catalogue
from shared.catalogue.overrides import apply_override, read_overrides
from shared.catalogue.validate import CatalogueError, validate_files
from shared.catalogue_store import (
    ACTIVE,
    ITEMS,
    MEASURES,
    MINISTRIES,
    RETIRED,
    VERSIONS,
    ensure_indexes,
)
from shared.mongo import bulk_write_chunked

__all__ = [
    "CatalogueDocuments",
    "CollectionCounts",
    "LoadReport",
    "OwnershipDivergence",
    "catalogue_documents",
    "content_hash",
    "load_into",
    "validated_catalogue",
]

Document = dict[str, Any]

# Fields the loader manages; everything else in a document is content and is hashed.
METADATA_FIELDS = frozenset(
    {"state", "catalogue_version", "loaded_at", "content_hash", "retired_in_version", "retired_at"}
)


def content_hash(document: Mapping[str, Any]) -> str:
    """SHA-256 of the document's content (load metadata excluded), key order irrelevant."""
    content = {k: v for k, v in document.items() if k not in METADATA_FIELDS}
    canonical = json.dumps(
        content, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class CatalogueDocuments:
    """The content documents of one catalogue, keyed by `_id`, before load metadata."""

    version: str
    items: list[Document]
    measures: list[Document]
    ministries: list[Document]
    version_record: Document


def catalogue_documents(catalogue: Catalogue) -> CatalogueDocuments:
    shown = catalogue.show_json()
    sections = {m.id: m.section_path for m in catalogue.measures}
    defaults = shown["defaults"]
    items = [
        {
            "_id": entry["id"],
            **entry,
            "section_path": sections.get(entry["measure_id"]),
            "defaults": defaults,
        }
        for entry in shown["kpis"]
    ]
    measures = [{"_id": m["id"], **m} for m in shown["measures"]]
    ministries = [
        {"_id": m.code, "order": i, **m.model_dump(mode="json")}
        for i, m in enumerate(catalogue.ministries)
    ]
    version_record: Document = {
        "_id": catalogue.version,
        "version": catalogue.version,
        "plan": shown["plan"],
        "defaults": defaults,
        "default_owner": catalogue.default_owner,
        "counts": {
            "kpis": len(catalogue.kpis),
            "milestones": len(catalogue.milestones),
            "measures": len(catalogue.measures),
            "ministries": len(catalogue.ministries),
        },
        "item_ids": sorted(i["_id"] for i in items),
    }
    return CatalogueDocuments(catalogue.version, items, measures, ministries, version_record)


@dataclass
class CollectionCounts:
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    retired: int = 0

    @property
    def written(self) -> int:
        return self.inserted + self.updated + self.retired

    def __str__(self) -> str:
        return (
            f"{self.inserted} inserted, {self.updated} updated, "
            f"{self.unchanged} unchanged, {self.retired} retired"
        )


@dataclass(frozen=True)
class OwnershipDivergence:
    """An item whose run-time owners (kept) differ from, or restate, the release's."""

    item_id: str
    catalogue_owners: list[str]
    run_time_owners: list[str]
    reason: str
    changed_by: str

    def __str__(self) -> str:
        same = " (the release now agrees)" if self.catalogue_owners == self.run_time_owners else ""
        return (
            f"{self.item_id}: catalogue {','.join(self.catalogue_owners)} -> kept "
            f"{','.join(self.run_time_owners)}{same} (by {self.changed_by}: {self.reason})"
        )


@dataclass
class LoadReport:
    version: str
    database: str
    items: CollectionCounts = field(default_factory=CollectionCounts)
    measures: CollectionCounts = field(default_factory=CollectionCounts)
    ministries: CollectionCounts = field(default_factory=CollectionCounts)
    version_record: str = "unchanged"  # inserted | updated | unchanged
    seconds: float = 0.0
    ownership_overrides: list[OwnershipDivergence] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return (
            self.items.written + self.measures.written + self.ministries.written > 0
            or self.version_record != "unchanged"
        )

    def summary(self) -> str:
        return "\n".join(
            [
                f"catalogue {self.version} -> database '{self.database}' "
                f"({'changed' if self.changed else 'no changes'}, {self.seconds:.2f}s)",
                f"items:      {self.items}",
                f"measures:   {self.measures}",
                f"ministries: {self.ministries}",
                f"version:    {self.version_record}",
                f"ownership overrides kept: {len(self.ownership_overrides)}",
                *(f"  {d}" for d in self.ownership_overrides),
            ]
        )


async def _sync(
    collection: AsyncCollection[Document],
    documents: Sequence[Document],
    *,
    version: str,
    now: datetime,
) -> CollectionCounts:
    counts = CollectionCounts()
    existing: dict[Any, Document] = {
        doc["_id"]: doc async for doc in collection.find({}, {"content_hash": 1, "state": 1})
    }
    operations: list[ReplaceOne[Document] | UpdateOne] = []
    for document in documents:
        digest = content_hash(document)
        old = existing.get(document["_id"])
        if old is not None and old.get("content_hash") == digest and old.get("state") == ACTIVE:
            counts.unchanged += 1
            continue
        stored = {
            **document,
            "state": ACTIVE,
            "catalogue_version": version,
            "loaded_at": now,
            "content_hash": digest,
        }
        operations.append(ReplaceOne({"_id": document["_id"]}, stored, upsert=True))
        if old is None:
            counts.inserted += 1
        else:
            counts.updated += 1
    present = {d["_id"] for d in documents}
    for doc_id, old in existing.items():
        if doc_id in present or old.get("state") == RETIRED:
            continue
        operations.append(
            UpdateOne(
                {"_id": doc_id},
                {"$set": {"state": RETIRED, "retired_in_version": version, "retired_at": now}},
            )
        )
        counts.retired += 1
    if operations:
        await bulk_write_chunked(collection, operations)
    return counts


async def load_into(
    db: AsyncDatabase[Document],
    catalogue: Catalogue,
    *,
    now: datetime,
    overrides: Mapping[str, Document] | None = None,
) -> LoadReport:
    """Upsert `catalogue` into `db`; see the module docstring. `now` stamps what is written;
    `overrides` (item id -> override) are the run-time owners to keep, `db`'s own when None."""
    started = time.perf_counter()
    documents = catalogue_documents(catalogue)
    report = LoadReport(version=documents.version, database=db.name)
    await ensure_indexes(db)
    report.measures = await _sync(
        db[MEASURES], documents.measures, version=documents.version, now=now
    )
    report.ministries = await _sync(
        db[MINISTRIES], documents.ministries, version=documents.version, now=now
    )
    if overrides is None:
        overrides = await read_overrides(db)
    items, report.ownership_overrides = _with_overrides(overrides, documents.items)
    report.items = await _sync(db[ITEMS], items, version=documents.version, now=now)

    record = documents.version_record
    digest = content_hash(record)
    old = await db[VERSIONS].find_one({"_id": documents.version})
    others_current = await db[VERSIONS].count_documents(
        {"_id": {"$ne": documents.version}, "current": True}
    )
    if others_current:
        await db[VERSIONS].update_many(
            {"_id": {"$ne": documents.version}, "current": True}, {"$set": {"current": False}}
        )
    if old is None or old.get("content_hash") != digest or old.get("current") is not True:
        first_loaded_at = old.get("first_loaded_at", now) if old else now
        await db[VERSIONS].replace_one(
            {"_id": documents.version},
            {
                **record,
                "content_hash": digest,
                "current": True,
                "first_loaded_at": first_loaded_at,
                "loaded_at": now,
            },
            upsert=True,
        )
        report.version_record = "inserted" if old is None else "updated"
    report.seconds = time.perf_counter() - started
    return report


def _with_overrides(
    overrides: Mapping[str, Document], items: Sequence[Document]
) -> tuple[list[Document], list[OwnershipDivergence]]:
    out: list[Document] = []
    divergences: list[OwnershipDivergence] = []
    for item in items:
        override = overrides.get(item["_id"])
        if override is None:
            out.append(item)
            continue
        out.append(apply_override(item, override))
        divergences.append(
            OwnershipDivergence(
                item_id=item["_id"],
                catalogue_owners=list(item.get("ministries") or []),
                run_time_owners=list(override["owners"]),
                reason=override["reason"],
                changed_by=override["changed_by"],
            )
        )
    return out, divergences


def validated_catalogue(
    catalogue_path: Path | None = None,
    ministries_path: Path | None = None,
    *,
    check_sources: bool = True,
    plan_text: Path | None = None,
) -> Catalogue:
    """The catalogue to load, or `CatalogueError` with every problem (entry id and field)."""
    catalogue, problems = validate_files(
        catalogue_path, ministries_path, plan_text=plan_text, check_sources=check_sources
    )
    if catalogue is None:
        raise CatalogueError(problems)
    return catalogue

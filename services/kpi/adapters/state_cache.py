"""The latest state version of every KPI/milestone an instance owns, held in memory.

Held as BSON (the encoding the database stores) rather than as decoded dicts: a decoded state
with its aggregate, episode and explanation costs several times its encoded size in Python
objects, and an instance may own tens of thousands of KPIs. A batch decodes only the states it
touches. A small summary per subject (status, kind, ministries, version id) serves the status
gauge and pruning without decoding anything.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import bson
from bson.codec_options import CodecOptions

Document = dict[str, Any]
_CODEC = CodecOptions(tz_aware=True)


@dataclass(frozen=True)
class StateSummary:
    subject_id: str
    version_id: str
    version: int
    status: str
    kind: str
    ministries: tuple[str, ...]


class StateCache:
    def __init__(self, documents: Iterable[Document] = ()) -> None:
        self._encoded: dict[str, bytes] = {}
        self._summaries: dict[str, StateSummary] = {}
        for document in documents:
            self.put(document)

    def get(self, subject_id: str) -> Document | None:
        encoded = self._encoded.get(subject_id)
        return None if encoded is None else bson.decode(encoded, codec_options=_CODEC)

    def put(self, document: Document) -> None:
        subject_id = document["subject_id"]
        self._encoded[subject_id] = bson.encode(document)
        self._summaries[subject_id] = StateSummary(
            subject_id=subject_id,
            version_id=document["_id"],
            version=int(document["version"]),
            status=document["status"],
            kind=document["kind"],
            ministries=tuple(document.get("ministries") or ()),
        )

    def put_if_newer(self, document: Document) -> None:
        """Keep `document` unless a later version of its subject is held (loading versions in
        any order leaves the latest of each)."""
        current = self._summaries.get(document["subject_id"])
        if current is None or int(document["version"]) > current.version:
            self.put(document)

    def summary(self, subject_id: str) -> StateSummary | None:
        return self._summaries.get(subject_id)

    def summaries(self) -> Iterator[StateSummary]:
        return iter(self._summaries.values())

    def __len__(self) -> int:
        return len(self._encoded)

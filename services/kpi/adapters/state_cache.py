"""The latest state version of every KPI/milestone an instance owns, held in memory.

Held as BSON (the encoding the database stores) rather than as decoded dicts: a decoded state
with its aggregate, episode and explanation costs several times its encoded size in Python
objects, and an instance may own tens of thousands of KPIs. A batch decodes only the states it
touches. A small summary per subject (status, kind, ministries, version id) serves the status
gauge and pruning without decoding anything.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import bson
from bson.codec_options import CodecOptions

from services.kpi.adapters.repository import version_document, version_from_document
from services.kpi.ports import StateSummary, StateVersion

_CODEC: CodecOptions[dict[str, Any]] = CodecOptions(tz_aware=True)


class BsonStateCache:
    """The StateCache port, each version held BSON-encoded."""

    def __init__(self) -> None:
        self._encoded: dict[str, bytes] = {}
        self._summaries: dict[str, StateSummary] = {}

    def get(self, subject_id: str) -> StateVersion | None:
        encoded = self._encoded.get(subject_id)
        if encoded is None:
            return None
        return version_from_document(bson.decode(encoded, codec_options=_CODEC))

    def put(self, version: StateVersion) -> None:
        self._encoded[version.subject_id] = bson.encode(version_document(version))
        self._summaries[version.subject_id] = StateSummary.of(version)

    def put_if_newer(self, version: StateVersion) -> None:
        """Keep `version` unless a later version of its subject is held (loading versions in
        any order leaves the latest of each)."""
        current = self._summaries.get(version.subject_id)
        if current is None or version.version > current.version:
            self.put(version)

    def summary(self, subject_id: str) -> StateSummary | None:
        return self._summaries.get(subject_id)

    def summaries(self) -> Iterator[StateSummary]:
        return iter(self._summaries.values())

    def __len__(self) -> int:
        return len(self._encoded)

"""The latest state version of every subject this instance owns, held in memory.

This instance's consumer holds the partitions of the subjects it writes (records are keyed by
KPI id), so nothing else writes them: reads cost nothing per event and writes are inserts. The
cache is reloaded whenever the partition assignment changes; a version another writer stored in
between fails on its identity (VersionConflictError), the cache is dropped and the batch redone.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from services.kpi.metrics import KpiMetrics
from services.kpi.ports import Ownership, StateCache, StateRepository, StateVersion
from services.kpi.service.outbox import OutboxPublisher


@dataclass
class LatestStates:
    repository: StateRepository
    ownership: Ownership
    outbox: OutboxPublisher
    metrics: KpiMetrics
    # An empty cache (the BSON-encoded one in production: an instance may own tens of thousands
    # of subjects).
    new_cache: Callable[[], StateCache]
    # Versions stored but superseded since the last compaction.
    superseded: int = 0
    _cache: StateCache | None = field(default=None, init=False)
    _generation: int = field(default=-1, init=False)

    def current(self) -> StateCache | None:
        """The cache, if it holds the partitions this instance owns now."""
        if self._cache is not None and self._generation == self.ownership.generation:
            return self._cache
        return None

    def drop(self) -> None:
        """Forget the cache: the next batch reloads the stored states."""
        self._cache = None

    async def load(self) -> StateCache:
        """The cache, loaded whole from the repository when the partition assignment has
        changed since the last load; unacknowledged versions found go to the outbox."""
        current = self.current()
        if current is not None:
            return current
        generation = self.ownership.generation
        # Streamed into the compact cache: decoding every version at once would make the
        # load, not the steady state, the instance's peak memory.
        cache = self.new_cache()
        with_outbox: list[StateVersion] = []
        owned = 0
        async for version in self.repository.iter_versions():
            if not self.ownership.owns(version.subject_id):
                continue
            owned += 1
            cache.put_if_newer(version)
            if version.outbox:
                with_outbox.append(version)
        unacknowledged = await self.repository.unacknowledged(with_outbox)
        self.outbox.pending = sorted(unacknowledged, key=lambda v: (v.subject_id, v.version))
        self.superseded = owned - len(cache)
        self._cache = cache
        self._generation = generation
        self.refresh_status_gauge()
        return cache

    def written(self, cache: StateCache, versions: list[StateVersion]) -> None:
        """Versions stored: they are now the latest, and what they superseded awaits
        compaction."""
        for version in versions:
            if cache.summary(version.subject_id) is not None:
                self.superseded += 1
            cache.put(version)

    def refresh_status_gauge(self) -> None:
        counts: dict[tuple[str, str, str], int] = {}
        for summary in self._cache.summaries() if self._cache is not None else ():
            for ministry in summary.ministries or ("unassigned",):
                key = (summary.status, summary.kind, ministry)
                counts[key] = counts.get(key, 0) + 1
        gauge = self.metrics.subjects_by_status
        gauge.clear()
        for (status, kind, ministry), count in counts.items():
            gauge.labels(status=status, kind=kind, ministry=ministry).set(count)

"""Compaction: superseded state versions are dropped without naming them.

FerretDB evaluates `$in` against every document it scans, so deleting thousands of versions by
id costs minutes. Instead every live state this instance owns is copied to a new version, then
every version of its partitions written before the copies is deleted, in one statement with
plain comparisons.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from services.kpi.ports import Ownership, StateRepository, VersionConflictError
from services.kpi.service.outbox import OutboxPublisher
from services.kpi.service.state_cache import LatestStates
from shared.clock import Clock


@dataclass
class Compactor:
    repository: StateRepository
    states: LatestStates
    outbox: OutboxPublisher
    ownership: Ownership
    # Real time: when versions are written, and the cutoff compared with it.
    wall_clock: Clock
    # Compact once at least this many superseded versions have accumulated (and at least twice
    # as many as there are live ones): each compaction costs one scan of the collection.
    prune_threshold: int = 1000

    async def compact(self, *, force: bool = False) -> None:
        cache = self.states.current()
        if cache is None:
            return
        superseded = self.states.superseded
        if not superseded or (superseded < max(self.prune_threshold, 2 * len(cache)) and not force):
            return
        await self.outbox.publish_pending()  # an unacknowledged version must not be dropped
        cutoff = self.wall_clock()
        copies = []
        for summary in list(cache.summaries()):
            latest = cache.get(summary.subject_id)
            assert latest is not None
            copies.append(
                replace(
                    latest,
                    version=latest.version + 1,
                    outbox=(),
                    written_at=self.wall_clock(),
                    partition=self.ownership.partition_of(summary.subject_id),
                )
            )
        try:
            await self.repository.insert(copies)
        except VersionConflictError:
            self.states.drop()
            raise
        for copy in copies:
            cache.put(copy)
        await self.repository.delete_written_before(cutoff, self.ownership.owned_partitions())
        self.states.superseded = 0

"""The time-driven sweep: deadlines pass and reports go stale without any event, so every
subject this instance owns is re-evaluated for today, periodically."""

from __future__ import annotations

from dataclasses import dataclass

from services.kpi.ports import Catalogue, Ownership
from services.kpi.service.compaction import Compactor
from services.kpi.service.evaluation import StateUpdater
from services.kpi.service.state_cache import LatestStates

SWEEP_CHUNK = 500


@dataclass
class Sweep:
    catalogue: Catalogue
    updater: StateUpdater
    states: LatestStates
    compactor: Compactor
    ownership: Ownership
    chunk: int = SWEEP_CHUNK

    async def sweep(self) -> int:
        """Re-evaluate this instance's catalogue subjects for today; how many status changes.
        Waits until the consumer holds its partitions (they decide which subjects), and goes
        through them in chunks, letting consumer batches in between."""
        await self.ownership.wait_assigned()
        entries = await self.catalogue.all_entries()
        changed = 0
        for start in range(0, len(entries), self.chunk):
            async with self.updater.lock:
                chunk = {
                    entry.id: entry.definition
                    for entry in entries[start : start + self.chunk]
                    if self.ownership.owns(entry.id)
                }
                changed += await self.updater.update(chunk, {})
        async with self.updater.lock:
            await self.compactor.compact(force=True)
            self.states.refresh_status_gauge()
        return changed

"""The catalogue's definitions as the write side uses them: a copy refreshed every
CATALOGUE_TTL_S, with ids not in the copy (a catalogue loaded since, or retired items) looked up
at once."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from services.kpi.ports import Catalogue, CatalogueEntry

CATALOGUE_TTL_S = 60.0


@dataclass
class Definitions:
    catalogue: Catalogue
    ttl_s: float = CATALOGUE_TTL_S
    # Monotonic seconds, for the refresh interval only.
    monotonic: Callable[[], float] = time.monotonic
    # Parsed entries, not catalogue documents: an instance may own tens of thousands.
    _entries: dict[str, CatalogueEntry] = field(default_factory=dict, init=False)
    _loaded_at: float = field(default=float("-inf"), init=False)

    async def entries(self, ids: Sequence[str]) -> dict[str, CatalogueEntry]:
        """Entries by id; ids the catalogue does not hold are left out."""
        if self.monotonic() - self._loaded_at > self.ttl_s:
            self._entries = {entry.id: entry for entry in await self.catalogue.all_entries()}
            self._loaded_at = self.monotonic()
        missing = [i for i in ids if i not in self._entries]
        if missing:
            self._entries.update(await self.catalogue.entries(missing))
        return {i: self._entries[i] for i in ids if i in self._entries}

    def forget(self, ids: Sequence[str]) -> None:
        """These entries changed: read them again when next asked for."""
        for i in ids:
            self._entries.pop(i, None)

"""The ministry codes API keys may be issued for: those of the catalogue's ``ministries.yaml``."""

from __future__ import annotations

from functools import cache

import yaml

from shared.catalogue.model import MinistryTable
from shared.catalogue.validate import DEFAULT_MINISTRIES


@cache
def known_ministries() -> frozenset[str]:
    table = MinistryTable.model_validate(yaml.safe_load(DEFAULT_MINISTRIES.read_text("utf-8")))
    return frozenset(m.code for m in table.ministries)

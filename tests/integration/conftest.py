"""Fixtures of the integration tier beyond tests/conftest.py's (infrastructure)."""

from tests.support.ingest import catalogue_database, ingest

__all__ = ["catalogue_database", "ingest"]

"""Errors the ingest service layer raises; the entrypoints map them to problem details."""

from __future__ import annotations


class StorageUnavailable(Exception):  # noqa: N818 - reads as the condition it reports
    """A store did not answer (the adapter translated its driver's error): nothing was changed
    that the caller may count on; retrying is safe."""

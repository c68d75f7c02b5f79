"""The one place a MongoDB driver error becomes the service layer's `StorageUnavailable`."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from pymongo.errors import PyMongoError

from services.ingest.service.errors import StorageUnavailable


@contextmanager
def storage_errors() -> Iterator[None]:
    """Raise `StorageUnavailable` (caused by the driver's error) for any error of the driver."""
    try:
        yield
    except PyMongoError as error:
        raise StorageUnavailable(repr(error)) from error

"""Group commit for inserts: concurrent requests' documents go to MongoDB in one ``insert_many``.

FerretDB (SQLite) commits each write on its own, so one insert per request caps single-event
POSTs at the commit rate. `BatchingInserter` queues documents and a flusher task writes whatever
is queued as one unordered ``insert_many`` while the previous write is in flight: no timer, no
added latency when idle, larger writes under load. Each caller learns which of its documents were
duplicates (the unique ``_id`` said so); any other error fails the callers of that write only.

The flusher task belongs to the application's lifespan (``async with inserter:``).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import BulkWriteError, PyMongoError

DUPLICATE_KEY = 11000
Document = dict[str, Any]


class WriterStopped(PyMongoError):  # noqa: N818 - reads as the condition it reports
    """The inserter is not running (shutting down): the store is unavailable to this caller."""


@dataclass
class _Pending:
    documents: Sequence[Document]
    done: asyncio.Future[set[int]]
    duplicates: set[int] = field(default_factory=set)


class BatchingInserter:
    def __init__(self, collection: AsyncCollection[Document], max_documents: int = 2_000) -> None:
        self._collection = collection
        self._max_documents = max_documents
        self._queue: list[_Pending] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> BatchingInserter:
        self._task = asyncio.create_task(self._run(), name=f"insert-{self._collection.name}")
        return self

    async def __aexit__(self, *_: object) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for pending in self._queue:
            if not pending.done.done():
                pending.done.set_exception(WriterStopped("the inserter is closed"))
        self._queue.clear()

    @property
    def alive(self) -> bool:
        return self._task is not None and not self._task.done()

    async def insert(self, documents: Sequence[Document]) -> set[int]:
        """Insert; returns the indexes (in `documents`) whose ``_id`` already existed."""
        if not documents:
            return set()
        if not self.alive:
            raise WriterStopped("the inserter is not running")
        pending = _Pending(documents, asyncio.get_running_loop().create_future())
        self._queue.append(pending)
        self._wake.set()
        return await pending.done

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._queue:
                await self._flush(self._take())

    def _take(self) -> list[_Pending]:
        taken: list[_Pending] = []
        size = 0
        while self._queue and (
            not taken or size + len(self._queue[0].documents) <= self._max_documents
        ):
            pending = self._queue.pop(0)
            taken.append(pending)
            size += len(pending.documents)
        return taken

    async def _flush(self, taken: list[_Pending]) -> None:
        documents: list[Document] = []
        owners: list[tuple[_Pending, int]] = []
        for pending in taken:
            for index, document in enumerate(pending.documents):
                documents.append(document)
                owners.append((pending, index))
        failed: BaseException | None = None
        try:
            await self._collection.insert_many(documents, ordered=False)
        except BulkWriteError as error:
            for failure in error.details.get("writeErrors", []):
                owner, index = owners[failure["index"]]
                if failure.get("code") == DUPLICATE_KEY:
                    owner.duplicates.add(index)
                elif not owner.done.done():
                    owner.done.set_exception(error)
        except Exception as error:
            failed = error
        for pending in taken:
            if pending.done.done():
                continue
            if failed is not None:
                pending.done.set_exception(failed)
            else:
                pending.done.set_result(pending.duplicates)

"""Group commit: the writes of concurrent requests of one process go to the database together.

A hot path whose write is one statement (a report) pays, per request, a pool checkout, a round trip, a commit and a
Redis call for its jobs; under load most of that is overhead that does not grow with the rows. `GroupCommit` queues
the items of concurrent callers and writes whatever is queued in one call of `write` (one statement, one commit,
one Redis call). Nothing waits for a batch to fill: an item that arrives while no write runs is written at once,
alone; items that arrive while a write runs form the next batch. So a quiet process answers as fast as before and a
busy one writes in batches about as large as its concurrency.

A batch whose write fails is retried item by item, so one bad item fails alone and the others are written.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")

Writer = Callable[[list[T]], Awaitable[Sequence[R | BaseException]]]
"""Writes a batch; one result per item, in order: its value, or the exception that item alone raises."""


class GroupCommit(Generic[T, R]):
    """Concurrent `submit`s written by one `write` call per batch (at most `lanes` batches at once)."""

    def __init__(self, write: Writer[T, R], *, max_batch: int = 64, lanes: int = 1):
        self._write = write
        self.max_batch = max_batch
        self.lanes = lanes
        self._pending: list[tuple[T, asyncio.Future[R]]] = []
        self._running = 0
        self._tasks: set[asyncio.Task[None]] = set()

    async def submit(self, item: T) -> R:
        """Queue `item` and wait until its batch is written: its result, or the exception it raised."""
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._pending.append((item, future))
        if self._running < self.lanes:
            self._running += 1
            task = asyncio.create_task(self._drain())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return await future  # a caller that goes away cancels its own future, not the batch's write

    async def _drain(self) -> None:
        try:
            while self._pending:
                batch, self._pending = self._pending[: self.max_batch], self._pending[self.max_batch :]
                await self._write_batch(batch)
        finally:
            self._running -= 1

    async def _write_batch(self, batch: list[tuple[T, asyncio.Future[R]]]) -> None:
        try:
            results = await self._write([item for item, _ in batch])
        except Exception as exc:
            if len(batch) == 1:
                results = [exc]
            else:  # retried one by one: only the item that fails fails
                log.warning("a batch of %d writes failed (%s); writing them one by one", len(batch), exc)
                for one in batch:
                    await self._write_batch([one])
                return
        except BaseException as exc:  # cancelled (shutdown): the callers hear it
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            raise
        if len(results) != len(batch):
            bad = RuntimeError(f"the writer returned {len(results)} results for {len(batch)} items")
            results = [bad] * len(batch)
        for (_, future), result in zip(batch, results, strict=True):
            if future.done():
                continue
            if isinstance(result, BaseException):
                future.set_exception(result)
            else:
                future.set_result(result)

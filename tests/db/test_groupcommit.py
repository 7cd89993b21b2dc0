"""lib.groupcommit: concurrent items written together; a failing batch retried item by item."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from grid_mgmt.lib.groupcommit import GroupCommit


async def test_concurrent_items_are_written_in_batches_and_each_gets_its_result() -> None:
    batches: list[list[int]] = []

    async def write(items: list[int]) -> Sequence[int | BaseException]:
        batches.append(items)
        await asyncio.sleep(0.01)  # a statement in flight: the others queue behind it
        return [i * 10 for i in items]

    group: GroupCommit[int, int] = GroupCommit(write)
    first = asyncio.ensure_future(group.submit(0))
    await asyncio.sleep(0.001)  # nothing else queued: 0 is written at once, alone
    results = await asyncio.gather(*(group.submit(i) for i in range(1, 20)))
    assert await first == 0 and results == [i * 10 for i in range(1, 20)]
    assert batches == [[0], list(range(1, 20))]  # the rest arrived while 0 was written: one batch


async def test_a_batch_that_fails_is_retried_one_by_one_and_only_the_bad_item_fails() -> None:
    calls: list[list[int]] = []

    async def write(items: list[int]) -> Sequence[int | BaseException]:
        calls.append(items)
        await asyncio.sleep(0)
        if 13 in items:
            raise ValueError("item 13 breaks the statement")
        return items

    group: GroupCommit[int, int] = GroupCommit(write)
    first = asyncio.ensure_future(group.submit(0))
    await asyncio.sleep(0)  # 0 is being written; the next ones form one batch
    rest = [asyncio.ensure_future(group.submit(i)) for i in (12, 13, 14)]
    assert await first == 0
    assert [await rest[0], await rest[2]] == [12, 14]
    with pytest.raises(ValueError, match="item 13"):
        await rest[1]
    assert calls == [[0], [12, 13, 14], [12], [13], [14]]


async def test_an_item_may_fail_alone_by_its_result_and_the_writer_must_answer_every_item() -> None:
    async def write(items: list[int]) -> Sequence[int | BaseException]:
        return [KeyError(i) if i % 2 else i for i in items][: 1 if 99 in items else None]

    group: GroupCommit[int, int] = GroupCommit(write)
    assert await group.submit(2) == 2
    with pytest.raises(KeyError):
        await group.submit(3)
    first = asyncio.ensure_future(group.submit(4))
    await asyncio.sleep(0)
    both = [asyncio.ensure_future(group.submit(i)) for i in (98, 99)]
    assert await first == 4
    for f in both:  # one result for two items: both hear it, nobody waits forever
        with pytest.raises(RuntimeError, match="1 results for 2 items"):
            await f

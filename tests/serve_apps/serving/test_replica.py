"""EngineRunner: engine calls off the event loop, on as many threads as the replica has engine workers."""

from __future__ import annotations

import asyncio
import threading

import pytest

from serve_apps.common.replica import EngineRunner


def test_a_batch_spreads_over_the_workers() -> None:
    # Two items that can only finish together: with one thread between them the barrier would time out.
    barrier = threading.Barrier(2, timeout=10)

    def meet(item: int) -> tuple[int, str]:
        barrier.wait()
        return item, threading.current_thread().name

    results = asyncio.run(EngineRunner("test", workers=2).map(meet, [1, 2]))

    assert [item for item, _ in results] == [1, 2]  # in the batch's order
    assert len({thread for _, thread in results}) == 2


def test_one_worker_runs_calls_one_at_a_time() -> None:
    active, most = 0, 0
    lock = threading.Lock()

    def call(item: int) -> int:
        nonlocal active, most
        with lock:
            active += 1
            most = max(most, active)
        threading.Event().wait(0.02)
        with lock:
            active -= 1
        return item

    async def many() -> list[int | Exception]:
        runner = EngineRunner("test")
        batches = await asyncio.gather(runner.map(call, [1, 2, 3]), runner.map(call, [4, 5]))
        return [r for batch in batches for r in batch]

    assert asyncio.run(many()) == [1, 2, 3, 4, 5]
    assert most == 1


def test_an_item_that_fails_fails_alone_and_counts_towards_broken() -> None:
    def call(item: int) -> int:
        if item == 2:
            raise RuntimeError("engine fell over")
        return item

    runner = EngineRunner("test", max_failures=1)  # one worker: item 2 fails after item 1 succeeded
    first, second = asyncio.run(runner.map(call, [1, 2]))
    assert first == 1 and isinstance(second, RuntimeError)
    assert runner.broken
    with pytest.raises(ValueError):
        EngineRunner("test", workers=0)

"""The part of every deployment that runs engine calls: off the event loop, one at a time, watching for breakage."""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from octavia.errors import ModelError
from serve_apps.common.errors import is_caller_error

T = TypeVar("T")
log = logging.getLogger("ray.serve")


class EngineRunner:
    """Runs blocking engine calls on one worker thread.

    One thread, because a replica's engine is sized for the CPUs (or GPU share) the replica was given: two calls
    at once would only fight over them, and not every engine is thread-safe. The event loop stays free for health
    checks, batching and queueing. After `max_failures` server-side failures in a row (not bad input) the engine
    is taken to be broken and `check_health` raises, so Serve replaces the replica.
    """

    def __init__(self, name: str, *, max_failures: int = 3) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"{name}-engine")
        self._max_failures = max_failures
        self._failures = 0
        self._last_error: BaseException | None = None

    async def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        loop = asyncio.get_running_loop()
        try:
            result = await loop.run_in_executor(self._executor, functools.partial(fn, *args, **kwargs))
        except Exception as exc:
            self.record_failure(exc)
            raise
        self._failures = 0
        return result

    async def map(self, fn: Callable[[Any], T], items: list[Any]) -> list[T | Exception]:
        """`fn` on each item of a batch in one worker-thread hop; an item that fails gets its exception back
        (returned, not raised) so that it fails alone rather than taking the whole batch with it."""

        def each() -> list[T | Exception]:
            results: list[T | Exception] = []
            for item in items:
                try:
                    results.append(fn(item))
                    self._failures = 0
                except Exception as exc:
                    self.record_failure(exc)
                    results.append(exc)
            return results

        return await asyncio.get_running_loop().run_in_executor(self._executor, each)

    def record_failure(self, exc: BaseException) -> None:
        if is_caller_error(exc):
            return
        self._failures += 1
        self._last_error = exc
        log.warning("engine call failed (%d in a row): %r", self._failures, exc)

    @property
    def broken(self) -> bool:
        return self._failures >= self._max_failures

    def check_health(self) -> None:
        if self.broken:
            raise ModelError(
                f"the engine failed {self._failures} calls in a row; last error: {self._last_error!r}",
                details={"failures": self._failures},
            )


def unwrap(result: T | Exception) -> T:
    """A batch item's result, raising it if it is the item's exception."""
    if isinstance(result, Exception):
        raise result
    return result


class LoadedModel:
    """A multiplexed model as Serve caches it: `release` is told when Serve evicts it (LRU), so stats stay true."""

    def __init__(self, model_id: str, engine: Any, release: Callable[[str], None]) -> None:
        self.model_id = model_id
        self.engine = engine
        self._release: Callable[[str], None] | None = release

    def __del__(self) -> None:  # Serve calls it on eviction, Python again at collection: release only once
        release, self._release = self._release, None
        if release is not None:
            release(self.model_id)

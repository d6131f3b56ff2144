"""The part of every deployment that runs engine calls: off the event loop, on worker threads, watching for breakage."""

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
    """Runs blocking engine calls on `workers` threads (default one), off the event loop.

    One thread by default, because a replica's engine is sized for the CPUs (or GPU share) the replica was given:
    two calls at once would only fight over them. `workers > 1` is for one replica that owns several cores (a run's
    own cluster on one machine): its calls run side by side on one loaded model, where as many replicas would each
    load a copy (memory, start-up) and each add a Ray worker process. Engines are safe to call from several threads
    (those that are not serialize their calls themselves). The event loop stays free for health checks, batching
    and queueing. After `max_failures` server-side failures in a row (not bad input) the engine is taken to be
    broken and `check_health` raises, so Serve replaces the replica.
    """

    def __init__(self, name: str, *, workers: int = 1, max_failures: int = 3) -> None:
        if workers < 1:
            raise ValueError(f"an engine runner needs at least 1 worker, got {workers}")
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix=f"{name}-engine")
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
        """`fn` on each item of a batch, the items spread over the workers; an item that fails gets its exception
        back (returned, not raised) so that it fails alone rather than taking the whole batch with it."""

        async def each(item: Any) -> T | Exception:
            try:
                return await self.run(fn, item)
            except Exception as exc:
                return exc

        return list(await asyncio.gather(*(each(item) for item in items)))

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


def batched(
    fn: Callable[[list[Any]], Any], *, max_batch_size: int, batch_wait_timeout_s: float, workers: int
) -> Callable[[Any], Any]:
    """`serve.batch` over `fn` (an async function of a list of items), built in the replica so that as many batches
    run at once as the replica has engine workers: `@serve.batch` on a method fixes `max_concurrent_batches` where
    the class is defined, and with one batch at a time a second worker would wait for the first one's batch."""
    from ray import serve

    return serve.batch(
        max_batch_size=max_batch_size, batch_wait_timeout_s=batch_wait_timeout_s, max_concurrent_batches=workers
    )(fn)

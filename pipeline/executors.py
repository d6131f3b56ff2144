"""Run a stage (a callable class) over rows: in this process, or as a Ray Data job with actors."""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor, as_completed
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

if TYPE_CHECKING:
    from pipeline.clients import ModelClients

Row = dict[str, Any]
T = TypeVar("T")


def longest_first(items: Iterable[T], cost: Callable[[T], float]) -> list[T]:
    """Items in the order to hand them to a pool of workers: the most expensive first, so that the last ones
    (each worker's final wait) are the cheapest and no worker idles long at the end while another finishes a
    long one. Ties keep their order."""
    return sorted(items, key=cost, reverse=True)


def ascii_label(text: str) -> str:
    """`text` as ASCII, accents dropped and other characters as `_`: Ray Data tags its metrics with the dataset's
    name, and Ray's metric tags must be ASCII (a dub of `entrevista ñ.mp4` failed in its first stage)."""
    folded = unicodedata.normalize("NFKD", text)
    return "".join(c if c.isascii() else "_" for c in folded if not unicodedata.combining(c))


class Executor(Protocol):
    def map(self, stage: type, context: str, rows: list[Row], *, name: str, on_row: Callable[[Row], None]) -> None:
        """Call `stage(context)(row)` for every row; `on_row` gets each result as it arrives (any order)."""


class LocalExecutor:
    """One stage instance in this process, `workers` rows at once on threads (in the order given): no Ray Data.

    Alone (one worker, the stage's own clients) it is the `--local` run (tests, the overhead benchmark). With
    the run's `ServeClients` it runs a stage whose rows only wait on Serve handles from the driver: the per-line
    synthesis, where a Ray Data job's actor, its helper actors and its executor loop cost ~7 % of a core that
    the TTS engines need on 2 cores (docs/decisions.md, 2026-12-07, eleventh session). The stage classes are
    safe to call from several threads.
    """

    def __init__(self, workers: int = 1, clients: ModelClients | None = None) -> None:
        if workers < 1:
            raise ValueError(f"workers must be at least 1, got {workers}")
        self.workers = workers
        self.clients = clients  # handed to the stage instead of the clients it would build from its context

    def map(self, stage: type, context: str, rows: list[Row], *, name: str, on_row: Callable[[Row], None]) -> None:
        if not rows:
            return
        instance = stage(context) if self.clients is None else stage(context, clients=self.clients)
        if self.workers == 1:
            for row in rows:
                on_row(instance(row))
            return
        pool = ThreadPoolExecutor(max_workers=min(self.workers, len(rows)), thread_name_prefix=ascii_label(name))
        try:
            for done in as_completed([pool.submit(instance, row) for row in rows]):
                on_row(done.result())
        finally:
            # On an error (or Ctrl-C) the queued rows are dropped; the running ones end with their model call.
            pool.shutdown(wait=False, cancel_futures=True)


class RayDataExecutor:
    """A Ray Data job: one block per row, one actor holding the stage (and its Serve handles) that runs
    `parallelism` rows at once, each on its own thread.

    The actor only orchestrates: the models run in Serve replicas and the actor waits on their handles, so it
    needs a small CPU fraction, and threads serve it as well as processes would. One actor instead of
    `parallelism`: a stage starts one process (each imports the pipeline and Serve's handle machinery while the
    first chunks already run), and every Ray worker process costs ~1 % of a core even while it waits
    (docs/benchmarks.md). The stage classes are safe to call from several threads (their handles and the artifact
    store are).
    """

    def __init__(self, parallelism: int = 2, num_cpus: float = 0.1) -> None:
        if parallelism < 1:
            raise ValueError(f"parallelism must be at least 1, got {parallelism}")
        self.parallelism = parallelism
        self.num_cpus = num_cpus

    def map(self, stage: type, context: str, rows: list[Row], *, name: str, on_row: Callable[[Row], None]) -> None:
        if not rows:
            return
        import ray.data
        from ray.util.debug import log_once

        ctx = ray.data.DataContext.get_current()
        ctx.enable_progress_bars = False  # progress goes through our hook
        log_once("ray_data_progress_manager_disabled")  # so Ray Data does not warn that they are off
        calls = min(self.parallelism, len(rows))
        ds = ray.data.from_items(rows, override_num_blocks=len(rows))
        ds = ds.map(
            stage,
            fn_constructor_kwargs={"context": context},
            # Ray Data sends the actor 2 x `calls` rows (its default): a finishing thread takes a queued one at once.
            compute=ray.data.ActorPoolStrategy(
                size=1, max_concurrent_calls_per_actor=calls, enable_true_multi_threading=True
            ),
            num_cpus=self.num_cpus,
        )
        ds.set_name(ascii_label(name))
        for row in ds.iter_rows():
            on_row(row)

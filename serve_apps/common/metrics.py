"""Replica metrics: exported through `ray.serve.metrics` (Prometheus, tagged with application, deployment and
replica by Serve) and mirrored in a local `ReplicaStats` that a deployment's `stats()` returns.

Metric names as Prometheus shows them (Ray prefixes `ray_`):
- `ray_octavia_request_latency_seconds` (histogram; tags method, outcome): one observation per call,
  batch waiting included.
- `ray_octavia_audio_seconds_total` (counter; tag method): seconds of audio transcribed, embedded, separated or
  spoken.
- `ray_octavia_batch_size` (histogram; tag method): requests per `@serve.batch` call.
- `ray_octavia_request_errors_total` (counter; tags method, code): failed calls by error code.
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import contextmanager

from pydantic import BaseModel, ConfigDict

from serve_apps.common.errors import error_code

LATENCY_BUCKETS_S: list[float] = [0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 180.0, 600.0]
BATCH_SIZE_BUCKETS = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0]


class ReplicaStats(BaseModel):
    """What one replica has done since it started."""

    model_config = ConfigDict(frozen=True)

    requests: dict[str, int]
    errors: dict[str, int]  # by error code
    audio_seconds: dict[str, float]
    batches: dict[str, int]
    max_batch_size: dict[str, int]
    model_loads: dict[str, int]  # multiplexed model id -> times loaded (more than once: it was evicted between)
    loaded_models: tuple[str, ...]


class ServingMetrics:
    def __init__(self) -> None:
        from ray.serve.metrics import Counter as RayCounter
        from ray.serve.metrics import Histogram

        self._latency = Histogram(
            "octavia_request_latency_seconds",
            description="Time to answer one call, batch waiting included.",
            boundaries=LATENCY_BUCKETS_S,
            tag_keys=("method", "outcome"),
        )
        self._audio = RayCounter(
            "octavia_audio_seconds",
            description="Seconds of audio processed (transcribed, embedded, separated or synthesised).",
            tag_keys=("method",),
        )
        self._batch_size = Histogram(
            "octavia_batch_size",
            description="Requests handled together by one @serve.batch call.",
            boundaries=BATCH_SIZE_BUCKETS,
            tag_keys=("method",),
        )
        self._errors = RayCounter(
            "octavia_request_errors", description="Failed calls by error code.", tag_keys=("method", "code")
        )
        self._requests: Counter[str] = Counter()
        self._error_counts: Counter[str] = Counter()
        self._audio_seconds: defaultdict[str, float] = defaultdict(float)
        self._batches: Counter[str] = Counter()
        self._max_batch: dict[str, int] = {}
        self._model_loads: Counter[str] = Counter()
        self._loaded: set[str] = set()

    @contextmanager
    def request(self, method: str) -> Iterator[None]:
        """Time a call and count its outcome."""
        start = time.perf_counter()
        self._requests[method] += 1
        outcome = "ok"
        try:
            yield
        except BaseException as exc:
            outcome = "error"
            code = error_code(exc)
            self._error_counts[code] += 1
            self._errors.inc(tags={"method": method, "code": code})
            raise
        finally:
            self._latency.observe(time.perf_counter() - start, tags={"method": method, "outcome": outcome})

    def audio(self, method: str, seconds: float) -> None:
        if seconds > 0:
            self._audio_seconds[method] += seconds
            self._audio.inc(seconds, tags={"method": method})

    def batch(self, method: str, size: int) -> None:
        self._batches[method] += 1
        self._max_batch[method] = max(size, self._max_batch.get(method, 0))
        self._batch_size.observe(size, tags={"method": method})

    def model_loaded(self, model_id: str) -> None:
        self._model_loads[model_id] += 1
        self._loaded.add(model_id)

    def model_unloaded(self, model_id: str) -> None:
        self._loaded.discard(model_id)

    def snapshot(self) -> ReplicaStats:
        return ReplicaStats(
            requests=dict(self._requests),
            errors=dict(self._error_counts),
            audio_seconds={k: round(v, 3) for k, v in self._audio_seconds.items()},
            batches=dict(self._batches),
            max_batch_size=dict(self._max_batch),
            model_loads=dict(self._model_loads),
            loaded_models=tuple(sorted(self._loaded)),
        )

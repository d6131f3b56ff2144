"""Token-bucket rate limiting, in the process.

Nothing external is needed (the control plane must run on SQLite alone). The cost: with several processes, each
enforces its own budget, so the effective limit is multiplied by the number of workers. A shared limiter (Redis)
can implement the same `RateLimiter` protocol later without touching the endpoints.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

# Buckets that are full again carry no information; forget them once this many keys are tracked.
_PRUNE_ABOVE = 10_000


class RateLimiter(Protocol):
    def acquire(self, key: str) -> float:
        """0 when the request may proceed, otherwise the seconds to wait before the next one would."""
        ...


@dataclass
class _Bucket:
    tokens: float
    updated: float


class TokenBucketLimiter:
    def __init__(self, per_minute: int, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        if per_minute <= 0 or burst <= 0:
            raise ValueError("per_minute and burst must be positive")
        self.rate = per_minute / 60.0
        self.capacity = float(burst)
        self.clock = clock
        self._buckets: dict[str, _Bucket] = {}
        self._lock = threading.Lock()

    def acquire(self, key: str) -> float:
        with self._lock:
            now = self.clock()
            bucket = self._buckets.get(key)
            if bucket is None:
                if len(self._buckets) >= _PRUNE_ABOVE:
                    self._prune(now)
                bucket = self._buckets[key] = _Bucket(self.capacity, now)
            bucket.tokens = min(self.capacity, bucket.tokens + (now - bucket.updated) * self.rate)
            bucket.updated = now
            if bucket.tokens >= 1.0:
                bucket.tokens -= 1.0
                return 0.0
            return (1.0 - bucket.tokens) / self.rate

    def _prune(self, now: float) -> None:
        full_after = self.capacity / self.rate
        for key in [k for k, b in self._buckets.items() if now - b.updated >= full_after]:
            del self._buckets[key]


def retry_after_seconds(wait: float) -> int:
    """Retry-After is whole seconds (RFC 9110 §10.2.3); round up so a client that obeys it succeeds."""
    return max(1, math.ceil(wait))

"""Progress hooks: overall percent + ETA from stage events, posted to the control plane or drawn in a terminal."""

from __future__ import annotations

import contextlib
import json
import logging
import time
import urllib.request
from collections.abc import Iterator, Sequence
from typing import Any

from pipeline.records import ProgressEvent

log = logging.getLogger(__name__)


@contextlib.contextmanager
def timed(step: str, logger: logging.Logger) -> Iterator[None]:
    """Logs the wall time of a serial step of a dub (`<step>: W s`), next to the stages' own lines: where a dub's
    time goes (docs/benchmarks.md)."""
    started = time.monotonic()
    yield
    logger.info("%s: %.1f s", step, time.monotonic() - started)


# Share of the whole run per stage; the per-language share is split evenly between target languages.
_SHARED = {"prepare": 5.0, "analyze": 45.0}
_PER_LANGUAGE = {"translate": 5.0, "synthesize": 30.0, "assemble": 10.0, "mux": 5.0}


class OverallProgress:
    """Folds stage events into one 0-100 figure with a run-level ETA."""

    def __init__(self, targets: Sequence[str]) -> None:
        self.targets = list(targets) or ["?"]
        self.done: dict[str, float] = {}
        self.started = time.monotonic()

    def weight(self, stage: str) -> float:
        base, _, _ = stage.partition(":")
        if base in _SHARED:
            return _SHARED[base]
        return _PER_LANGUAGE.get(base, 0.0) / len(self.targets)  # shared + per-language weights sum to 100

    def update(self, event: ProgressEvent) -> tuple[float, float | None]:
        self.done[event.stage] = event.fraction
        percent = min(100.0, sum(self.weight(s) * f for s, f in self.done.items()))
        if event.stage == "done":
            percent = 100.0
        elapsed = time.monotonic() - self.started
        eta = elapsed / percent * (100 - percent) if 1.0 <= percent < 100 else (0.0 if percent >= 100 else None)
        return round(percent, 1), eta


class HttpProgressReporter:
    """POSTs progress to the control plane's internal endpoint (at most once a second, always the last one)."""

    def __init__(self, url: str, token: str, targets: Sequence[str], min_interval: float = 1.0) -> None:
        self.url = url
        self.token = token
        self.overall = OverallProgress(targets)
        self.min_interval = min_interval
        self.last_sent = 0.0

    def __call__(self, event: ProgressEvent) -> None:
        percent, eta = self.overall.update(event)
        now = time.monotonic()
        if now - self.last_sent < self.min_interval and event.completed < event.total:
            return
        self.last_sent = now
        self.post({"stage": event.stage, "progress": percent, "eta_seconds": eta, "status": "running"})

    def finish(
        self,
        status: str,
        *,
        error: dict[str, Any] | None = None,
        media_duration: float | None = None,
        warnings: Sequence[str] = (),
    ) -> None:
        payload = {"stage": "done", "progress": 100.0 if status == "succeeded" else None, "eta_seconds": 0.0}
        self.post({**payload, "status": status, "error": error, "media_duration": media_duration,
                   "warnings": list(warnings)})  # fmt: skip

    def post(self, payload: dict[str, Any]) -> None:
        body = json.dumps(payload).encode()
        request = urllib.request.Request(
            self.url,
            data=body,
            method="POST",
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {self.token}"},
        )
        for attempt in range(3):
            try:
                with urllib.request.urlopen(request, timeout=10) as response:
                    response.read()
                return
            except OSError as exc:  # progress must never kill the dub; the reconciler polls Ray anyway
                log.warning("progress post failed (attempt %d): %s", attempt + 1, exc)
                time.sleep(0.5 * (attempt + 1))

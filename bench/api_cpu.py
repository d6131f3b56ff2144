"""CPU per request of the control plane, in one process (issue 4, item 6: where the load benchmark's time goes).

wrk's numbers move with whatever else shares the two cores; this one does not need them. One worker's app is
driven by raw ASGI calls from a loop (no sockets, no HTTP parsing: what is left is FastAPI, the endpoints, the ORM
and the driver), `concurrency` requests in flight at a time, and reports per request:

- the API process's CPU time (all its threads: event loop and request threads),
- the PostgreSQL backends' CPU time (they share the same two cores in the load benchmark),
- the database round trips (statements the driver sent, BEGIN and COMMIT included).

Setup is the load benchmark's, through the public API of a one-worker server on a fresh database, which is then
stopped. `--profile FILE` writes a cProfile of the measured requests, event-loop thread only (read it with
`python -m pstats FILE`; the CPU numbers then include the profiler).
"""

from __future__ import annotations

import asyncio
import cProfile
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.api_bench import _prepare, api_server, cpu_seconds


@dataclass(frozen=True)
class CpuResult:
    scenario: str
    requests: int
    concurrency: int
    api_cpu_ms: float
    db_cpu_ms: float
    round_trips: float
    statuses: dict[int, int]


def _postgres_cpu_seconds() -> float:
    import psutil

    return cpu_seconds(p for p in psutil.process_iter(["name"]) if (p.info["name"] or "").startswith("postgres"))


class _RoundTrips:
    """Counts what the driver sends: every `execute` on a psycopg connection is one round trip (psycopg 3 sends
    BEGIN as its own command before the first statement of a transaction)."""

    def __init__(self) -> None:
        self.count = 0

    def install(self, engine: Any) -> None:
        from sqlalchemy import event

        for name in ("before_cursor_execute", "begin", "commit", "rollback"):
            event.listen(engine, name, self._count)

    def _count(self, *_args: Any) -> None:
        self.count += 1


def _request(method: str, path: str, token: str, body: bytes = b"") -> tuple[dict[str, Any], bytes]:
    headers = [(b"host", b"bench"), (b"authorization", f"Bearer {token}".encode())]
    if body:
        headers += [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    scope = {
        "type": "http", "asgi": {"version": "3.0", "spec_version": "2.4"}, "http_version": "1.1",
        "method": method, "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"",
        "root_path": "", "headers": headers, "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 8001),
    }  # fmt: skip
    return scope, body


async def _call(app: Any, scope: dict[str, Any], body: bytes) -> int:
    status = 0
    sent = False

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            await asyncio.sleep(3600)  # a client that keeps the connection open
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(scope, receive, send)
    return status


async def _drive(
    app: Any, make: Callable[[], tuple[dict[str, Any], bytes]], requests: int, concurrency: int
) -> dict[int, int]:
    statuses: dict[int, int] = {}
    remaining = requests

    async def client() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            scope, body = make()
            status = await _call(app, scope, body)
            statuses[status] = statuses.get(status, 0) + 1

    await asyncio.gather(*(client() for _ in range(concurrency)))
    return statuses


def _measure(app: Any, trips: _RoundTrips, scenario: str, make: Callable[[], tuple[dict[str, Any], bytes]],
             requests: int, concurrency: int, profile: cProfile.Profile | None) -> CpuResult:  # fmt: skip
    async def run() -> CpuResult:
        async with app.router.lifespan_context(app):
            await _drive(app, make, max(requests // 10, 50), concurrency)  # warm-up: pool, caches
            trips.count = 0
            db_before, api_before = _postgres_cpu_seconds(), time.process_time()
            if profile:
                profile.enable()
            statuses = await _drive(app, make, requests, concurrency)
            if profile:
                profile.disable()
            api = time.process_time() - api_before
            db = _postgres_cpu_seconds() - db_before
        return CpuResult(scenario, requests, concurrency, 1000 * api / requests, 1000 * db / requests,
                         trips.count / requests, statuses)  # fmt: skip

    return asyncio.run(run())


def run(requests: int = 2000, concurrency: int = 8, profile_path: Path | None = None) -> list[CpuResult]:
    from control_plane.app import create_app
    from control_plane.config import Settings
    from control_plane.db import create_db_engine, create_session_factory
    from control_plane.server import settle_garbage_collector

    with api_server("octavia_bench_cpu", 18081) as api:  # set up through the API like a customer, then stopped
        ids = _prepare(api.base, api.work, api.env)
        env = api.env
    os.environ.update({k: v for k, v in env.items() if k.startswith("OCTAVIA_")})
    settings = Settings()
    engine = create_db_engine(settings.database_url, pool_size=settings.database_pool_size,
                              max_overflow=settings.database_max_overflow)  # fmt: skip
    trips = _RoundTrips()
    trips.install(engine)
    app = create_app(settings, session_factory=create_session_factory(engine))
    settle_garbage_collector()  # as a serving worker does
    profile = cProfile.Profile() if profile_path else None
    key, job = ids["BENCH_API_KEY"], ids["BENCH_JOB_ID"]
    body = json.dumps({"upload_id": ids["BENCH_UPLOAD_ID"], "target_languages": ["es"], "source_language": "en"})

    def get() -> tuple[dict[str, Any], bytes]:
        return _request("GET", f"/v1/jobs/{job}", key)

    def post() -> tuple[dict[str, Any], bytes]:
        return _request("POST", "/v1/jobs", key, body.encode())

    try:
        results = [
            _measure(app, trips, "GET /v1/jobs/{id}", get, requests, concurrency, profile),
            _measure(app, trips, "POST /v1/jobs", post, requests // 2, concurrency, profile),
        ]
    finally:
        engine.dispose()
    if profile and profile_path:
        profile.dump_stats(str(profile_path))
    return results


def report(results: list[CpuResult]) -> str:
    lines = [
        "| request | requests | in flight | API CPU per request | PostgreSQL CPU per request | round trips "
        "| statuses |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in results:
        statuses = ", ".join(f"{code}: {n}" for code, n in sorted(r.statuses.items()))
        lines.append(f"| {r.scenario} | {r.requests} | {r.concurrency} | {r.api_cpu_ms:.2f} ms | "
                     f"{r.db_cpu_ms:.2f} ms | {r.round_trips:.1f} | {statuses} |")  # fmt: skip
    return "\n".join(lines)

"""Control-plane load benchmark (issue 4, item 6): `octavia api --workers 2` on PostgreSQL, driven on loopback by
wrk (C, one thread: a few percent of a core at these rates, where locust took most of one) with
bench/wrk/api.lua.

- GET /v1/jobs/{id} paced at a fixed rate over 30 connections (after a 15 s warm-up): p50/p99 latency and the
  rate achieved. Pacing is one schedule of send times, so requests arrive evenly.
- POST /v1/jobs (each one validates the upload, prices it and reserves credits in one transaction) as fast as
  4, 8 and 16 connections get answers: requests per second. All jobs belong to one user, so every reservation
  waits for the same credit-account row lock: the worst case for a single high-volume customer.

Setup goes through the public API like a customer: an admin (CLI), a login, an API key, credits granted, a real
tus upload of a 2 s clip (ffprobe-checked), one job to read. The jobs worker is off, so no Ray job is started:
the benchmark measures the API, not the cluster. Load generator and server share the 2 cores.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import httpx2

if TYPE_CHECKING:
    import psutil

ROOT = Path(__file__).resolve().parent.parent
WRK_SCRIPT = ROOT / "bench" / "wrk" / "api.lua"
POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/{db}"
ADMIN = ("load@example.com", "Quiet-Harbor-Lantern-42")


@dataclass(frozen=True)
class LoadResult:
    scenario: str
    connections: int
    seconds: float
    requests: int
    failures: int
    rps: float
    p50_ms: float
    p99_ms: float
    server_cpu_ms: float  # CPU time of the API's processes (both workers and their supervisor) per request


def _recreate_database(name: str) -> None:
    import psycopg

    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def _server_env(work: Path, db: str) -> dict[str, str]:
    return {
        **os.environ,
        "OCTAVIA_DATABASE_URL": POSTGRES.format(db=db),
        "OCTAVIA_DATA_DIR": str(work / "data"),
        "OCTAVIA_JWT_SECRET": "bench-" + "x" * 40,
        "OCTAVIA_JOBS_WORKER_ENABLED": "false",
        "OCTAVIA_RATE_LIMIT_PER_MINUTE": "1000000",
        "OCTAVIA_RATE_LIMIT_BURST": "100000",
        "OCTAVIA_AUTH_RATE_LIMIT_PER_MINUTE": "1000000",
        "OCTAVIA_AUTH_RATE_LIMIT_BURST": "100000",
        "OCTAVIA_MAIL_DIR": str(work / "mail"),
    }


def _wait_up(base: str, server: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 90
    while True:
        try:
            if httpx2.get(f"{base}/healthz", timeout=1).status_code == 200:
                return
        except httpx2.HTTPError:
            pass
        if server.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError("the API did not come up")
        time.sleep(0.3)


def _prepare(base: str, work: Path, env: dict[str, str]) -> dict[str, str]:
    from tusclient.client import TusClient

    subprocess.run([sys.executable, "-m", "octavia.cli", "api", "create-admin", ADMIN[0], "--password", ADMIN[1]],
                   env=env, check=True, capture_output=True)  # fmt: skip
    with httpx2.Client(base_url=base, timeout=30) as http:
        token = http.post("/v1/auth/login", json={"email": ADMIN[0], "password": ADMIN[1]}).json()["access_token"]
        auth = {"Authorization": f"Bearer {token}"}
        key = http.post("/v1/api-keys", json={"name": "bench"}, headers=auth).json()["key"]
        http.post(
            "/v1/admin/credits/grant",
            json={"email": ADMIN[0], "amount": 10**9, "reason": "load benchmark"},
            headers=auth,
        ).raise_for_status()
        clip = work / "clip.mp4"
        subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=160x120:duration=2",
                        "-f", "lavfi", "-i", "sine=frequency=440:duration=2", "-shortest", "-c:v", "libx264",
                        "-c:a", "aac", str(clip)], check=True)  # fmt: skip
        uploader = TusClient(f"{base}/v1/uploads", headers={"Authorization": f"Bearer {key}"}).uploader(
            str(clip), chunk_size=1 << 20, metadata={"filename": "clip.mp4"}
        )
        uploader.upload()
        upload_id = uploader.url.rstrip("/").rsplit("/", 1)[-1]
        body = {"upload_id": upload_id, "target_languages": ["es"], "source_language": "en"}
        job = http.post("/v1/jobs", json=body, headers={"Authorization": f"Bearer {key}"})
        job.raise_for_status()
    return {"BENCH_API_KEY": key, "BENCH_UPLOAD_ID": upload_id, "BENCH_JOB_ID": job.json()["id"]}


def cpu_seconds(processes: Iterable[psutil.Process]) -> float:
    """User + system CPU time of `processes` (those that exited meanwhile count nothing)."""
    import psutil

    total = 0.0
    for process in processes:
        with contextlib.suppress(psutil.Error):
            times = process.cpu_times()
            total += times.user + times.system
    return total


def _cpu_seconds(server: subprocess.Popen[bytes]) -> float:
    import psutil

    root = psutil.Process(server.pid)
    return cpu_seconds([root, *root.children(recursive=True)])


def _wrk(
    base: str,
    scenario: str,
    connections: int,
    rate: float | None,
    seconds: int,
    ids: dict[str, str],
    server: subprocess.Popen[bytes],
) -> LoadResult:
    if shutil.which("wrk") is None:
        raise RuntimeError("the API benchmark needs `wrk` (Debian package wrk): scripts/setup_system.sh --bench")
    env = {**os.environ, "WRK_TOKEN": ids["BENCH_API_KEY"]}
    if scenario == "get-job":
        name, url = "GET /v1/jobs/{id}", f"{base}/v1/jobs/{ids['BENCH_JOB_ID']}"
    else:
        body = {"upload_id": ids["BENCH_UPLOAD_ID"], "target_languages": ["es"], "source_language": "en"}
        name, url = "POST /v1/jobs", f"{base}/v1/jobs"
        env.update(WRK_METHOD="POST", WRK_BODY=json.dumps(body))
    if rate:
        env["WRK_RATE"] = f"{rate:g}"
    cpu_before = _cpu_seconds(server)
    out = subprocess.run(["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s", "-s", str(WRK_SCRIPT),
                          url], env=env, check=True, capture_output=True, text=True).stdout  # fmt: skip
    server_cpu = _cpu_seconds(server) - cpu_before
    stats = json.loads(out.strip().splitlines()[-1])
    return LoadResult(
        scenario=name,
        connections=connections,
        seconds=seconds,
        requests=stats["requests"],
        failures=stats["status_errors"] + stats["socket_errors"],
        rps=stats["requests"] / (stats["duration_us"] / 1e6),
        p50_ms=stats["p50_us"] / 1000,
        p99_ms=stats["p99_us"] / 1000,
        server_cpu_ms=1000 * server_cpu / max(stats["requests"], 1),
    )


@dataclass(frozen=True)
class ApiServer:
    base: str
    work: Path
    env: dict[str, str]
    process: subprocess.Popen[bytes]


@contextlib.contextmanager
def api_server(db: str, port: int, workers: int = 1) -> Iterator[ApiServer]:
    """`octavia api` with `workers` processes on a fresh PostgreSQL database `db`; stopped on exit."""
    work = Path(tempfile.mkdtemp(prefix=f"{db}-"))
    _recreate_database(db)
    env = _server_env(work, db)
    base = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "octavia.cli", "api", "--port", str(port), "--workers", str(workers)]
    server = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_up(base, server)
        yield ApiServer(base, work, env, server)
    finally:
        server.terminate()
        server.wait(30)


def run(seconds: int = 30, get_rate: float = 300.0, post_connections: tuple[int, ...] = (4, 8, 16)) -> list[LoadResult]:
    with api_server("octavia_bench", 18080, workers=2) as api:
        ids = _prepare(api.base, api.work, api.env)
        _wrk(api.base, "get-job", 30, get_rate, 15, ids, api.process)  # warm-up: connection pools, statements
        results = [_wrk(api.base, "get-job", 30, get_rate, seconds, ids, api.process)]
        results += [_wrk(api.base, "create-job", c, None, seconds, ids, api.process) for c in post_connections]
        return results


def report(results: list[LoadResult]) -> str:
    lines = [
        "| request | connections | duration | requests | failures | req/s | p50 | p99 | server CPU per request |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in results:
        lines.append(f"| {r.scenario} | {r.connections} | {r.seconds:.0f} s | {r.requests} | {r.failures} | "
                     f"{r.rps:.1f} | {r.p50_ms:.1f} ms | {r.p99_ms:.1f} ms | {r.server_cpu_ms:.2f} ms |")  # fmt: skip
    get, posts = results[0], results[1:]
    best = max(posts, key=lambda r: r.rps)
    lines += [
        "",
        f"- GET /v1/jobs/{{id}} at {get.rps:.0f} req/s: p99 {get.p99_ms:.1f} ms (target ≤ 25 ms at 300 req/s)",
        f"- POST /v1/jobs: {best.rps:.0f} req/s with its credit reservation at {best.connections} connections, "
        f"{min(r.rps for r in posts):.0f}-{best.rps:.0f} over {', '.join(str(r.connections) for r in posts)} "
        "(target ≥ 150 req/s)",
    ]
    return "\n".join(lines)

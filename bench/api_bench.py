"""Control-plane load benchmark (issue 4, item 6): `octavia api --workers 2` on PostgreSQL, driven on loopback by
locust (headless, FastHttpUser).

- GET /v1/jobs/{id} at a fixed rate (users × constant throughput): p50/p99 latency and the rate achieved.
- POST /v1/jobs (each one validates the upload, prices it and reserves credits in one transaction) with as
  many concurrent users as keep the server saturated: requests per second.

Setup goes through the public API like a customer: an admin (CLI), a login, an API key, credits granted, a real
tus upload of a 2 s clip (ffprobe-checked), one job to read. The jobs worker is off, so no Ray job is started:
the benchmark measures the API, not the cluster. Load generator and server share the 2 cores.
"""

from __future__ import annotations

import csv
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx2

ROOT = Path(__file__).resolve().parent.parent
POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/{db}"
ADMIN = ("load@example.com", "Quiet-Harbor-Lantern-42")


@dataclass(frozen=True)
class LoadResult:
    scenario: str
    users: int
    seconds: float
    requests: int
    failures: int
    rps: float
    p50_ms: float
    p99_ms: float


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


def _locust(base: str, scenario: str, users: int, per_user_rps: float, seconds: int, env: dict[str, str],
            work: Path) -> LoadResult:  # fmt: skip
    prefix = work / f"locust-{scenario}"
    subprocess.run(
        [sys.executable, "-m", "locust", "-f", str(ROOT / "bench" / "api_locustfile.py"), "--headless",
         "--host", base, "-u", str(users), "-r", str(users), "-t", f"{seconds}s", "--csv", str(prefix),
         "--only-summary", "--loglevel", "WARNING"],
        env={**env, "BENCH_SCENARIO": scenario, "BENCH_PER_USER_RPS": str(per_user_rps)},
        check=True, capture_output=True,
    )  # fmt: skip
    with open(f"{prefix}_stats.csv") as f:
        row = next(r for r in csv.DictReader(f) if r["Name"] != "Aggregated")
    return LoadResult(
        scenario=row["Name"],
        users=users,
        seconds=seconds,
        requests=int(row["Request Count"]),
        failures=int(row["Failure Count"]),
        rps=float(row["Requests/s"]),
        p50_ms=float(row["50%"]),
        p99_ms=float(row["99%"]),
    )


def run(seconds: int = 30, get_rate: float = 300.0, post_users: int = 16) -> list[LoadResult]:
    work = Path(tempfile.mkdtemp(prefix="octavia-api-bench-"))
    db = "octavia_bench"
    _recreate_database(db)
    env = _server_env(work, db)
    port = 18080
    base = f"http://127.0.0.1:{port}"
    server = subprocess.Popen([sys.executable, "-m", "octavia.cli", "api", "--port", str(port), "--workers", "2"],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        _wait_up(base, server)
        ids = _prepare(base, work, env)
        load_env = {**os.environ, **ids}
        users = 30
        results = [_locust(base, "get-job", users, get_rate / users, seconds, load_env, work)]
        results.append(_locust(base, "create-job", post_users, 1000.0, seconds, load_env, work))
        return results
    finally:
        server.terminate()
        server.wait(30)


def report(results: list[LoadResult]) -> str:
    lines = [
        "| request | users | duration | requests | failures | req/s | p50 | p99 |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in results:
        lines.append(f"| {r.scenario} | {r.users} | {r.seconds:.0f} s | {r.requests} | {r.failures} | {r.rps:.1f} | "
                     f"{r.p50_ms:.0f} ms | {r.p99_ms:.0f} ms |")  # fmt: skip
    get, post = results
    lines += [
        "",
        f"- GET /v1/jobs/{{id}} at {get.rps:.0f} req/s: p99 {get.p99_ms:.0f} ms (target ≤ 25 ms at 300 req/s)",
        f"- POST /v1/jobs: {post.rps:.0f} req/s with its credit reservation (target ≥ 150 req/s)",
    ]
    return "\n".join(lines)

"""`octavia api`: migrates an empty SQLite database and serves (OpenAPI at /docs); with migrations pending and
auto-migration off it refuses with a clear message instead of serving a wrong schema."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx2

from tests.control_plane.live_server import free_port


def environment(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "OCTAVIA_DATABASE_URL": f"sqlite:///{tmp_path / 'cp.sqlite3'}",
        "OCTAVIA_DATA_DIR": str(tmp_path / "data"),
        "OCTAVIA_JOBS_WORKER_ENABLED": "false",
        **extra,
    }


def test_serves_after_migrating_an_empty_database(tmp_path):
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "octavia.cli", "api", "--port", str(port)],
        env=environment(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while not _answers(base):
            assert server.poll() is None and time.monotonic() < deadline, "the API did not come up"
            time.sleep(0.2)
        assert httpx2.get(f"{base}/docs").status_code == 200
        schema = httpx2.get(f"{base}/openapi.json").json()
        assert "/v1/jobs" in schema["paths"] and "/v1/uploads" in schema["paths"]
        ready = httpx2.get(f"{base}/readyz").json()
        assert ready["checks"]["database"]["status"] == "ok"
        signup = httpx2.post(f"{base}/v1/auth/signup", json={"email": "a@example.com", "password": "x"})
        assert signup.status_code == 422 and signup.json()["error"]["code"]
    finally:
        server.terminate()
        server.wait(30)


def test_refuses_pending_migrations_when_told_not_to_migrate(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "octavia.cli", "api"],
        env=environment(tmp_path, OCTAVIA_AUTO_MIGRATE="false"), capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 2
    assert "error[database_not_ready]" in result.stderr and "Traceback" not in result.stderr


def test_migrate_then_serve_without_auto_migration(tmp_path):
    env = environment(tmp_path, OCTAVIA_AUTO_MIGRATE="false")
    migrated = subprocess.run([sys.executable, "-m", "octavia.cli", "api", "migrate"], env=env, capture_output=True,
                              text=True, timeout=60)  # fmt: skip
    assert migrated.returncode == 0, migrated.stderr
    again = subprocess.run([sys.executable, "-m", "octavia.cli", "api", "migrate"], env=env, capture_output=True,
                           text=True, timeout=60)  # fmt: skip
    assert again.returncode == 0 and again.stdout != migrated.stdout  # second run: already at head


def test_two_workers_share_the_connections_and_stop_together(tmp_path):
    """`--workers 2` binds one SO_REUSEPORT socket per process: the kernel spreads connections over both (a
    shared socket let one process accept them all), and SIGTERM stops the workers with the supervisor."""
    import psutil

    port = free_port()
    command = [sys.executable, "-m", "octavia.cli", "api", "--port", str(port), "--workers", "2"]
    server = subprocess.Popen(command, env=environment(tmp_path), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    clients: list[httpx2.Client] = []
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 90
        workers: list[psutil.Process] = []
        while len(workers) < 2 or not all(_answers(base) for _ in range(4)):
            assert server.poll() is None and time.monotonic() < deadline, "the API did not come up"
            workers = [w for w in psutil.Process(server.pid).children() if _listens(w, port)]
            time.sleep(0.3)
        # 16 keep-alive connections: all on one worker would happen with probability 2 × 2^-16.
        for _ in range(16):
            client = httpx2.Client(base_url=base, timeout=5)
            assert client.get("/healthz").status_code == 200
            clients.append(client)
        per_worker = [
            sum(1 for c in w.net_connections("tcp") if c.laddr and c.laddr.port == port and c.status == "ESTABLISHED")
            for w in workers
        ]
        assert sum(per_worker) == 16 and min(per_worker) > 0, per_worker
    finally:
        for client in clients:
            client.close()
        server.terminate()
        assert server.wait(30) == 0
    assert not any(w.is_running() and w.status() != psutil.STATUS_ZOMBIE for w in workers)


def _answers(base: str) -> bool:
    try:
        return httpx2.get(f"{base}/healthz", timeout=1).status_code == 200
    except httpx2.HTTPError:
        return False


def _listens(process, port: int) -> bool:
    import psutil

    try:
        return any(c.laddr and c.laddr.port == port and c.status == "LISTEN" for c in process.net_connections("tcp"))
    except psutil.Error:
        return False


def test_serving_processes_freeze_their_start_up_objects_and_collect_less_often():
    """In a subprocess: the test process keeps the interpreter's defaults."""
    probe = (
        "import gc; from control_plane.server import GC_THRESHOLDS, settle_garbage_collector; "
        "garbage = [[] for _ in range(1000)]; settle_garbage_collector(); "
        "print(gc.get_threshold() == GC_THRESHOLDS, gc.get_freeze_count() > 1000, GC_THRESHOLDS[0] > 700)"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert done.stdout.split() == ["True", "True", "True"], done.stderr

"""The embedded cluster a run starts for itself: its processes get the environment it is tuned with."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile

import pytest

from pipeline.job import EMBEDDED_ENVIRONMENT, ray_cluster
from tests.factories import dub_stopped_by_sigterm

pytestmark = pytest.mark.slow


def test_workers_of_the_embedded_cluster_see_its_environment_and_what_the_user_set_wins(monkeypatch):
    for name in EMBEDDED_ENVIRONMENT:
        monkeypatch.delenv(name, raising=False)  # restored after the test: ray_cluster sets them in this process
    monkeypatch.setenv("RAY_ADDRESS", "")
    monkeypatch.setenv("RAY_SERVE_CONTROL_LOOP_INTERVAL_S", "0.5")  # a user's own choice
    import ray

    @ray.remote(num_cpus=0.1)
    def worker_environment() -> dict[str, str | None]:
        import os

        return {name: os.environ.get(name) for name in EMBEDDED_ENVIRONMENT}

    with ray_cluster(None, name="environment test") as embedded:
        assert embedded
        seen = ray.get(worker_environment.remote())
    assert seen == {"RAY_AUTH_MODE": "disabled", "RAY_SERVE_CONTROL_LOOP_INTERVAL_S": "0.5"}
    assert not ray.is_initialized()


def test_a_stage_runs_parallelism_rows_at_once_in_one_data_actor(monkeypatch):
    monkeypatch.setenv("RAY_ADDRESS", "")
    from pipeline.executors import RayDataExecutor

    class Meet:
        """Each row waits until another row of the same actor arrives: rows one at a time would never meet."""

        def __init__(self, context: str) -> None:
            import threading

            self.barrier = threading.Barrier(int(context), timeout=30)

        def __call__(self, row: dict) -> dict:  # type: ignore[type-arg]
            import os
            import threading

            self.barrier.wait()
            return {"n": row["n"], "pid": os.getpid(), "thread": threading.current_thread().name}

    rows: list[dict] = []  # type: ignore[type-arg]
    with ray_cluster(None, name="executor test"):
        RayDataExecutor(parallelism=2).map(Meet, "2", [{"n": n} for n in range(4)], name="meet", on_row=rows.append)
    assert sorted(r["n"] for r in rows) == [0, 1, 2, 3]
    assert len({r["pid"] for r in rows}) == 1  # one actor process
    assert len({r["thread"] for r in rows}) == 2  # running two rows at once


# A driver that calls a Serve application with autoscaling (translate, as the file sets it) through the run's
# clients, leaves its cluster, and lives on past the 10 s at which a handle's router pushes its metrics.
AFTER_THE_RUN = """
import json, sys, time
import psutil, ray
from pipeline.clients import ServeClients
from pipeline.job import CONFIGS, deploy_serve_apps, ray_cluster

with ray_cluster(None, name="after the run") as embedded:
    apps = deploy_serve_apps(CONFIGS / "serve-cpu.yaml", {"translate"}, embedded=embedded, workers=1)
    with ServeClients(apps, owned=embedded) as clients:
        pairs = clients.translation_pairs()
left = time.monotonic()
started = set()
while time.monotonic() - left < float(sys.argv[1]):
    started |= {" ".join(child.cmdline()[:1]) for child in psutil.Process().children(recursive=True)}
    time.sleep(0.2)
print(json.dumps({"pairs": len(pairs), "ray": ray.is_initialized(), "started": sorted(started)}))
"""


def test_a_finished_run_starts_no_ray_of_its_own_accord():
    """Leaving the cluster stops the clients' handles first: a router left running called `ray.init()` at its
    next metrics push (Ray starts a cluster on first use), and a second local Ray instance started in a driver
    that had finished its run (seen at the end of a CLI dub that ran beside another)."""
    with tempfile.TemporaryDirectory(prefix="ray-", dir="/tmp") as ray_tmp:  # short: Ray's socket paths
        env = {**os.environ, "RAY_ADDRESS": "", "RAY_TMPDIR": ray_tmp}
        result = subprocess.run([sys.executable, "-c", AFTER_THE_RUN, "13"], capture_output=True, text=True,
                                timeout=300, env=env)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    after = json.loads(result.stdout.strip().splitlines()[-1])
    assert after["pairs"] > 0  # the handle was used: its router ran
    assert after == {"pairs": after["pairs"], "ray": False, "started": []}
    assert "Started a local Ray instance" not in result.stderr


def test_sigterm_while_lines_are_synthesized_stops_the_run_at_once_and_leaves_no_output(conversation, tmp_path):
    """The lines go to the TTS replica from the driver's threads, each blocked on a Serve response: a SIGTERM then
    (Ray's job stop, a container stopping) still unwinds the run, its cluster stops, and the process exits with
    nothing under the out folder (the threads' pending calls do not hold the exit)."""
    import signal

    artifacts, out = tmp_path / "artifacts", tmp_path / "out"  # a fresh store: every line is synthesized
    with tempfile.TemporaryDirectory(prefix="ray-", dir="/tmp") as ray_tmp:
        env = {**os.environ, "OCTAVIA_ARTIFACT_DIR": str(artifacts), "OCTAVIA_PROFILE": "offline",
               "RAY_ADDRESS": "", "RAY_TMPDIR": ray_tmp}  # fmt: skip
        args = [str(conversation.path), "--to", "es", "--out", str(out), "--separation", "none"]
        code, stderr = dub_stopped_by_sigterm(args, env, ready=lambda: bool(list(artifacts.glob("lines/**/*.wav"))))
    assert code == 128 + signal.SIGTERM, stderr[-2000:]
    assert not out.exists() or list(out.iterdir()) == []
    assert len(list(artifacts.glob("lines/**/*.wav"))) < len(conversation.lines)  # stopped part-way through

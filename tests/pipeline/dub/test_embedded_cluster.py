"""The embedded cluster a run starts for itself: its processes get the environment it is tuned with."""

from __future__ import annotations

import pytest

from pipeline.job import EMBEDDED_ENVIRONMENT, ray_cluster

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

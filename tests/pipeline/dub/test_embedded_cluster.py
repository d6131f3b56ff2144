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

"""One Ray cluster and Serve instance for the whole folder: starting Ray takes 5-10 s on this machine.

Each test module deploys its application once (a module fixture through `deploy`) and deletes it at the end, so
that the two cores are never shared by idle replicas of other families.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
# What every test application gets: one replica (no autoscaling on two shared cores) and a small CPU share.
TEST_DEPLOYMENT = {
    "num_replicas": 1,
    "ray_actor_options": {"num_cpus": 0.25},
    # Deleting an app between modules need not wait out a graceful drain: nothing is in flight by then.
    "graceful_shutdown_wait_loop_s": 0.2,
    "graceful_shutdown_timeout_s": 2.0,
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class ServeCluster:
    url: str
    deployed: list[str] = field(default_factory=list)

    def deploy(self, app, name: str):  # type: ignore[no-untyped-def]
        from ray import serve

        handle = serve.run(app, name=name, route_prefix=f"/{name}")
        self.deployed.append(name)
        return handle

    def delete(self, name: str) -> None:
        from ray import serve

        serve.delete(name)
        self.deployed.remove(name)


@pytest.fixture(scope="package")
def cluster() -> Iterator[ServeCluster]:
    with pytest.MonkeyPatch.context() as patch:
        # Ray 2.60 turns token authentication on by default; this local cluster lives only for the tests.
        patch.setenv("RAY_AUTH_MODE", "disabled")
        # The replicas (started by the raylet with this environment) import test fakes from `tests.`.
        patch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
        import ray
        from ray import serve

        ray.init(num_cpus=2, include_dashboard=False, configure_logging=False)
        port = free_port()
        serve.start(http_options={"host": "127.0.0.1", "port": port})
        try:
            yield ServeCluster(url=f"http://127.0.0.1:{port}")
        finally:
            serve.shutdown()
            ray.shutdown()


@pytest.fixture(scope="module")
def deploy(cluster: ServeCluster) -> Iterator[Callable]:
    """deploy(build_app(...), name) -> DeploymentHandle, served at /<name>; deleted when the module ends."""
    names: list[str] = []

    def run(app, name: str):  # type: ignore[no-untyped-def]
        names.append(name)
        return cluster.deploy(app, name)

    yield run
    for name in names:
        cluster.delete(name)

"""The pipeline's per-item deployments, as `with_replicas` configures them, give every caller an idle replica.

Two Ray actors (each with its own handle, so its own router and queue-length cache, as the pipeline's Data actors
have) call a two-replica deployment one item at a time. With the file's options (max_ongoing_requests 32) Serve
often routed both callers to the same replica, where the second item waited for the first while the other
replica idled; with one request per replica no item waits on a busy replica.
"""

from __future__ import annotations

import asyncio

import pytest
import yaml

from tests.serve_apps.serving.conftest import ROOT, TEST_DEPLOYMENT

CONFIG = ROOT / "serve_apps" / "configs" / "serve-cpu.yaml"
CALLS_PER_CALLER = 8


def tts_options(replicas: int) -> dict:  # type: ignore[type-arg]
    from pipeline.serving import with_replicas

    config = with_replicas(yaml.safe_load(CONFIG.read_text()), replicas)
    [deployment] = next(a for a in config["applications"] if a["name"] == "tts")["deployments"]
    return {key: deployment[key] for key in ("max_ongoing_requests", "autoscaling_config", "ray_actor_options")}


@pytest.fixture(scope="module")
def two_replicas(deploy):  # type: ignore[no-untyped-def]
    from ray import serve

    @serve.deployment
    class Worker:
        """Works 0.2 s on one item at a time (a lock, as the real shims' one engine thread) and says on which
        replica, and whether the item found the replica busy and had to wait."""

        def __init__(self) -> None:
            self.replica = serve.get_replica_context().replica_id.unique_id
            self.engine = asyncio.Lock()

        async def work(self, item: int) -> tuple[str, bool]:
            queued = self.engine.locked()
            async with self.engine:
                await asyncio.sleep(0.2)
            return self.replica, queued

    options = {**tts_options(2), "graceful_shutdown_timeout_s": TEST_DEPLOYMENT["graceful_shutdown_timeout_s"]}
    deploy(Worker.options(**options).bind(), "routing")
    return "routing"


def test_no_item_waits_on_a_busy_replica(two_replicas: str) -> None:
    import ray

    @ray.remote(num_cpus=0.05)
    class Caller:
        def __init__(self, app: str) -> None:
            from ray import serve

            self.handle = serve.get_deployment_handle("Worker", app_name=app)

        def run(self, count: int) -> list[tuple[str, bool]]:
            return [self.handle.work.remote(i).result() for i in range(count)]

    callers = [Caller.remote(two_replicas) for _ in range(2)]
    ray.get([c.run.remote(1) for c in callers])  # both routers know both replicas
    items = [item for done in ray.get([c.run.remote(CALLS_PER_CALLER) for c in callers]) for item in done]

    assert len(items) == 2 * CALLS_PER_CALLER
    assert len({replica for replica, _ in items}) == 2
    waited = sum(queued for _, queued in items)
    assert waited == 0, f"{waited} of {len(items)} items waited on a busy replica while the other one was free"

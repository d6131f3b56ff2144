"""Deploy (a subset of) a Serve config file: onto a cluster as `serve deploy` does, or onto a run's own embedded
cluster with the applications built in the driver."""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from octavia.errors import ModelError
from serve_apps.common.options import deep_merge

if TYPE_CHECKING:
    from ray.serve.schema import ServeApplicationSchema, ServeDeploySchema

_READY_TIMEOUT = 600.0

# The models every chunk or line goes through: `workers` sizes these (separation and translation stay as the
# file says: Spleeter is not the bottleneck and holds a large graph; Apertium answers a batch in milliseconds).
PER_ITEM_FAMILIES = frozenset({"asr", "diarize", "tts"})
# Per-item apps whose deployments batch requests (`max_batch_size`). None of their engines has a batch API, so on
# a replica with several workers a batch only makes each of its items wait for the longest one: its callers'
# next items wait with them and a worker idles (a 10-minute dub: 77 of 158 lines came back in pairs; unbatched, none).
UNBATCHED_FAMILIES = frozenset({"diarize", "tts"})


def with_workers(config: dict[str, Any], workers: int | Mapping[str, int]) -> dict[str, Any]:
    """`config` (a parsed Serve config file) for a run's own cluster on one machine: each per-item application
    (or each family a mapping names: family -> calls) as ONE replica running `workers` engine calls at once, each
    on its own thread over the one loaded model (the app arg `engine_workers`), taking that many requests, one
    request per batch.

    One replica rather than `workers` replicas of one thread: the calls run side by side just the same (the engines
    release the GIL), but the model is loaded once, not once per replica (peak memory of a 10-minute dub at
    parallelism 2: 7.2 -> 5.2 GiB), the start-up loads 3 replicas instead of 6 (on 2 cores it is CPU-bound:
    29.5 -> 18 s), and every Ray worker process costs ~1 % of a core even when idle (docs/benchmarks.md). A
    request never waits behind a busy replica while another idles, which Serve's router did with one-thread
    replicas (it picks by queue lengths each caller caches for up to 10 s). The file's `num_cpus` stays the
    replica's: it is a scheduling share, the engines' thread counts say what they use."""
    counts = workers if isinstance(workers, Mapping) else dict.fromkeys(PER_ITEM_FAMILIES, workers)
    if unknown := set(counts) - PER_ITEM_FAMILIES:
        raise ValueError(f"only {', '.join(sorted(PER_ITEM_FAMILIES))} are sized, not {', '.join(sorted(unknown))}")
    if any(n < 1 for n in counts.values()):
        raise ValueError(f"workers must be at least 1, got {dict(counts)}")
    applications = []
    for app in config.get("applications", []):
        if (n := counts.get(app.get("name", ""))) is not None:
            args = {**(app.get("args") or {}), "engine_workers": n}
            if app["name"] in UNBATCHED_FAMILIES:
                args["max_batch_size"] = 1
            app = {**app, "args": args, "deployments": [_one_replica(d, n) for d in app.get("deployments", [])]}
        applications.append(app)
    return {**config, "applications": applications}


def _one_replica(deployment: dict[str, Any], calls: int) -> dict[str, Any]:
    fixed = {"min_replicas": 1, "initial_replicas": 1, "max_replicas": 1, "target_ongoing_requests": calls}
    return {**deployment, "autoscaling_config": {**deployment.get("autoscaling_config", {}), **fixed},
            "max_ongoing_requests": calls}  # fmt: skip


def _selected(
    config: Path, only: set[str], workers: int | Mapping[str, int] | None
) -> tuple[ServeDeploySchema, list[ServeApplicationSchema]]:
    """The config file (sized by `with_workers` when `workers` is given) and its applications named in `only`."""
    import yaml
    from ray.serve.schema import ServeDeploySchema

    parsed = yaml.safe_load(config.read_text())
    schema = ServeDeploySchema.model_validate(with_workers(parsed, workers) if workers else parsed)
    apps = [app for app in schema.applications if app.name in only]
    missing = only - {app.name for app in apps}
    if missing:
        raise ModelError(f"{config} has no application(s) named {', '.join(sorted(missing))}")
    return schema, apps


def deploy_config(config: Path, only: set[str], *, timeout: float = _READY_TIMEOUT) -> dict[str, str]:
    """Apply the whole config file to a cluster, as `serve deploy <config>` does (Serve's declarative API, the
    file's HTTP options and proxy location), and wait until the applications named in `only` (application name
    == model family) run. The whole file, not just `only`: a declarative deploy is the cluster's complete Serve
    state, and one naming only this run's families would remove the others (a run without separation would
    delete the cluster's `separate`). Returns family -> application name."""
    from ray.serve._private import api as serve_api

    schema, apps = _selected(config, only, None)
    client = serve_api.serve_start(http_options=schema.http_options.model_dump(),
                                   proxy_location=schema.proxy_location)  # fmt: skip
    client.deploy_apps(schema, _blocking=False)
    return _wait_running([app.name for app in apps], timeout)


def run_config_here(
    config: Path, only: set[str], *, workers: int | Mapping[str, int], timeout: float = _READY_TIMEOUT
) -> dict[str, str]:
    """Deploy the applications named in `only` onto a run's own embedded cluster, sized for `workers` callers
    (`with_workers`), without HTTP, and wait until they run. Each application is built in this process
    (its `build_app(args)`, the file's `deployments[]` entry passed as the args' `deployment` overlay, which
    `deployment_options` applies last, as Serve would) and handed to Serve ready-made (`serve.run_many`).

    Serve's declarative deploy builds every application in a task of its own: a new worker process that imports
    Serve and the application's module, four or five at once on two cores, before any replica starts (the
    driver has both imported already). Building here took the embedded start-up from 15.5-16.9 s to 13.1-13.2 s
    (docs/benchmarks.md). Returns family -> application name.
    """
    from ray import serve
    from ray.serve._private import api as serve_api
    from ray.serve.config import ProxyLocation

    targets = built_here(config, only, workers=workers)
    serve_api.serve_start(proxy_location=ProxyLocation.Disabled)  # called through handles only
    serve.run_many(targets, wait_for_applications_running=False)
    return _wait_running([target.name for target in targets], timeout)


def built_here(config: Path, only: set[str], *, workers: int | Mapping[str, int]) -> list[Any]:
    """`run_config_here`'s applications as `serve.RunTarget`s, built in this process (no cluster needed)."""
    import importlib

    from ray import serve

    from pipeline.clients import SERVE_DEPLOYMENTS

    _, apps = _selected(config, only, workers)
    targets = []
    for app in apps:
        if app.runtime_env:
            raise ValueError(f"{config}: application {app.name!r} sets a runtime_env, which a run's own cluster, "
                             "building its applications in this process, cannot apply")  # fmt: skip
        args = dict(app.args)
        for entry in app.deployments:
            if entry.name != SERVE_DEPLOYMENTS[app.name][1]:
                raise ValueError(f"{config}: application {app.name!r} has no deployment {entry.name!r}")
            overrides = entry.model_dump(exclude_unset=True, exclude={"name"})
            args["deployment"] = deep_merge(args.get("deployment") or {}, overrides)
        module, attribute = app.import_path.split(":")
        builder = getattr(importlib.import_module(module), attribute)
        targets.append(serve.RunTarget(target=builder(args), name=app.name, route_prefix=None))
    return targets


def _wait_running(names: list[str], timeout: float) -> dict[str, str]:
    from ray import serve

    deadline = time.monotonic() + timeout
    pending = set(names)
    while pending:
        statuses = serve.status().applications
        for name in list(pending):
            status = statuses.get(name)
            if status is None:
                continue
            if status.status == "RUNNING":
                pending.discard(name)
            elif status.status in ("DEPLOY_FAILED", "UNHEALTHY"):
                raise ModelError(f"Serve application {name!r} failed to start: {status.message}")
        if pending and time.monotonic() > deadline:
            raise ModelError(f"Serve applications {sorted(pending)} not running after {timeout:.0f} s")
        if pending:
            time.sleep(0.5)
    return {name: name for name in names}

"""Deploy (a subset of) a Serve config file from the driver, exactly as `serve run <config>.yaml` does."""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from octavia.errors import ModelError

_READY_TIMEOUT = 600.0

# The models every chunk or line goes through: `replicas` scales these (separation and translation stay as the
# file says: Spleeter is not the bottleneck and holds a large graph; Apertium answers a batch in milliseconds).
PER_ITEM_FAMILIES = frozenset({"asr", "diarize", "tts"})


def with_replicas(config: dict[str, Any], replicas: int | Mapping[str, int]) -> dict[str, Any]:
    """`config` (a parsed Serve config file) with exactly `replicas` replicas of each per-item deployment (or of
    the families a mapping names: family -> replicas), one request at a time each. The file's `num_cpus` is read
    as the family's share of the cluster and split between its replicas, so that more replicas still fit where
    the file's fit (on 2 cores they would otherwise wait for CPUs forever).

    One request per replica because the pipeline runs as many Data actors as replicas, each with one item in
    flight, and a replica works one item at a time: a second request queued on a busy replica waits while another
    replica idles. Serve's router picks between replicas by queue lengths that each caller caches for up to 10 s,
    so two callers often picked the same one; a full replica makes the router take the idle one (24 Kokoro lines
    from two actors: 47.5 s -> 38.0 s, docs/benchmarks.md)."""
    counts = replicas if isinstance(replicas, Mapping) else dict.fromkeys(PER_ITEM_FAMILIES, replicas)
    if unknown := set(counts) - PER_ITEM_FAMILIES:
        raise ValueError(f"only {', '.join(sorted(PER_ITEM_FAMILIES))} are scaled, not {', '.join(sorted(unknown))}")
    if any(n < 1 for n in counts.values()):
        raise ValueError(f"replicas must be at least 1, got {dict(counts)}")
    applications = []
    for app in config.get("applications", []):
        if (n := counts.get(app.get("name", ""))) is not None:
            app = {**app, "deployments": [_scaled(d, n) for d in app.get("deployments", [])]}
        applications.append(app)
    return {**config, "applications": applications}


def _scaled(deployment: dict[str, Any], replicas: int) -> dict[str, Any]:
    fixed = {"min_replicas": replicas, "initial_replicas": replicas, "max_replicas": replicas,
             "target_ongoing_requests": 1}  # fmt: skip
    actor = dict(deployment.get("ray_actor_options") or {})
    for resource in ("num_cpus", "num_gpus"):
        if actor.get(resource):
            actor[resource] = round(actor[resource] / replicas, 4)
    return {**deployment, "autoscaling_config": {**deployment.get("autoscaling_config", {}), **fixed},
            "max_ongoing_requests": 1, "ray_actor_options": actor}  # fmt: skip


def deploy_config(
    config: Path,
    only: set[str],
    *,
    replicas: int | Mapping[str, int] | None = None,
    http: bool = True,
    timeout: float = _READY_TIMEOUT,
) -> dict[str, str]:
    """Deploy the applications named in `only` (application name == model family) and wait until they run.

    Uses Serve's declarative deploy (what the `serve run`/`serve deploy` CLIs call), so the file's
    `deployments[]` overrides apply unchanged, except that `replicas` (when given) fixes the replica count of
    the per-item models (`with_replicas`). `http=False` starts no HTTP proxy (a run's own cluster is called
    through handles only). Returns family -> application name.
    """
    import yaml
    from ray import serve
    from ray.serve._private import api as serve_api
    from ray.serve.config import ProxyLocation
    from ray.serve.schema import ServeDeploySchema

    parsed = yaml.safe_load(config.read_text())
    schema = ServeDeploySchema.model_validate(with_replicas(parsed, replicas) if replicas else parsed)
    apps = [app for app in schema.applications if app.name in only]
    missing = only - {app.name for app in apps}
    if missing:
        raise ModelError(f"{config} has no application(s) named {', '.join(sorted(missing))}")
    http_options = schema.http_options.model_dump()
    http_options["host"] = "127.0.0.1"  # the embedded cluster serves this machine only
    proxy = schema.proxy_location if http else ProxyLocation.Disabled
    client = serve_api.serve_start(http_options=http_options, proxy_location=proxy)
    client.deploy_apps(schema.model_copy(update={"applications": apps, "proxy_location": proxy}), _blocking=False)

    deadline = time.monotonic() + timeout
    pending = {app.name for app in apps}
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
    return {app.name: app.name for app in apps}

"""Deploy (a subset of) a Serve config file from the driver, exactly as `serve run <config>.yaml` does."""

from __future__ import annotations

import time
from pathlib import Path

from octavia.errors import ModelError

_READY_TIMEOUT = 600.0


def deploy_config(config: Path, only: set[str], *, timeout: float = _READY_TIMEOUT) -> dict[str, str]:
    """Deploy the applications named in `only` (application name == model family) and wait until they run.

    Uses Serve's declarative deploy (what the `serve run`/`serve deploy` CLIs call), so the file's
    `deployments[]` overrides apply unchanged. Returns family -> application name.
    """
    import yaml
    from ray import serve
    from ray.serve._private import api as serve_api
    from ray.serve.schema import ServeDeploySchema

    schema = ServeDeploySchema.model_validate(yaml.safe_load(config.read_text()))
    apps = [app for app in schema.applications if app.name in only]
    missing = only - {app.name for app in apps}
    if missing:
        raise ModelError(f"{config} has no application(s) named {', '.join(sorted(missing))}")
    http = schema.http_options.model_dump()
    http["host"] = "127.0.0.1"  # the embedded cluster serves this machine only
    client = serve_api.serve_start(http_options=http)
    client.deploy_apps(schema.model_copy(update={"applications": apps}), _blocking=False)

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

"""Deployment options: one set of defaults, overlaid by each family's needs, then by the app's args.

Ray Serve applies a config file's `deployments[]` entries on top of what `build_app` returns, so the order of
precedence is: DEFAULT_DEPLOYMENT_OPTIONS < family options (deployment.py) < app args `deployment` <
config file `deployments[]`.
"""

from __future__ import annotations

import copy
from typing import Any

DEFAULT_DEPLOYMENT_OPTIONS: dict[str, Any] = {
    "autoscaling_config": {
        "min_replicas": 1,
        "initial_replicas": 1,
        "max_replicas": 2,
        "target_ongoing_requests": 2,
    },
    "max_ongoing_requests": 4,
    # Fractional CPUs: a whole CPU per replica would leave the five applications of a small machine (2 cores)
    # waiting forever for resources. Ray also sets OMP_NUM_THREADS from this (1 thread below one CPU).
    "ray_actor_options": {"num_cpus": 0.25},
    "health_check_period_s": 10.0,
    # Long enough for a health check that waits behind a long engine call on the replica's event loop.
    "health_check_timeout_s": 60.0,
    "graceful_shutdown_timeout_s": 30.0,
    # A replica whose engine cannot load (model missing) fails the deployment after 3 tries, not Serve's 20.
    "max_constructor_retry_count": 3,
}


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """A new dict: `override` wins, nested dicts (autoscaling_config, ray_actor_options) merged key by key."""
    merged = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def deployment_options(*overlays: dict[str, Any]) -> dict[str, Any]:
    """DEFAULT_DEPLOYMENT_OPTIONS with each overlay merged on top, in order.

    Setting `num_replicas` drops the autoscaling defaults: Serve refuses both at once.
    """
    options = DEFAULT_DEPLOYMENT_OPTIONS
    for overlay in overlays:
        if "num_replicas" in overlay:
            options = {k: v for k, v in options.items() if k != "autoscaling_config"}
        options = deep_merge(options, overlay)
    return options

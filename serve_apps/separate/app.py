"""The source-separation application: `serve_apps.separate.app:build_app` in a Serve config file."""

from __future__ import annotations

from typing import Any

from ray.serve import Application

from serve_apps.common.args import AppArgs
from serve_apps.common.engines import EngineSpec
from serve_apps.common.options import deployment_options
from serve_apps.separate.deployment import SEPARATE_OPTIONS, Separator


class SeparateAppArgs(AppArgs):
    # "none" (passthrough), "spleeter-2stems", or a Demucs catalogue name or directory; default: the profile's.
    model: str | None = None


def load_engine(model: str, *, fetch: bool = False):
    """The default engine, built in the replica from the model store."""
    from octavia.models.store import ModelStore
    from serve_apps.separate.engine import create_separation_engine

    store = ModelStore()
    if fetch and model in store.catalog and not store.status(model).ok:
        store.fetch(model)
    return create_separation_engine(model, store=store)


def engine_spec(args: SeparateAppArgs) -> EngineSpec:
    return args.custom_engine() or EngineSpec(
        factory="serve_apps.separate.app:load_engine",
        kwargs={"model": args.model or args.profile_models.separation, "fetch": args.fetch_models},
    )


def build_app(args: dict[str, Any]) -> Application:
    parsed = SeparateAppArgs.model_validate(args)
    options = deployment_options(SEPARATE_OPTIONS, parsed.deployment)
    return Separator.options(**options).bind(engine_spec(parsed))

"""Arguments every application takes (the `args:` of a Serve config file), validated by pydantic."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from octavia.profiles import PROFILES, ProfileModels
from serve_apps.common.engines import EngineSpec


class AppArgs(BaseModel):
    """Shared by the five families; each adds its model overrides and engine options."""

    model_config = ConfigDict(extra="forbid")

    # Which models serve: the pipeline's profiles (`auto` is not offered: a replica is told what its node has).
    profile: Literal["offline", "quality"] = "offline"
    # Replace the profile's engine: "package.module:attribute" of an engine class or factory, called in the replica
    # with `engine_kwargs`. Tests use it to serve fakes; operators to serve an engine of their own.
    engine: str | None = None
    engine_kwargs: dict[str, Any] = Field(default_factory=dict)
    # Download hub models missing from the model store when a replica starts (quality profile, online nodes).
    fetch_models: bool = False
    # Ray Serve deployment options merged over the defaults (options.py); a config file's `deployments[]`
    # entries still win over these.
    deployment: dict[str, Any] = Field(default_factory=dict)

    @property
    def profile_models(self) -> ProfileModels:
        return PROFILES[self.profile]

    def custom_engine(self) -> EngineSpec | None:
        return EngineSpec(factory=self.engine, kwargs=self.engine_kwargs) if self.engine else None


class PerItemAppArgs(AppArgs):
    """Arguments of the applications a dub calls once per chunk or line (asr, diarize, tts)."""

    # Engine calls one replica runs at once, each on its own thread, all on the one loaded model. 1 on a cluster
    # (add replicas there); a run's own cluster on one machine sets its parallelism here instead of starting as
    # many replicas, each loading its own copy of the model (pipeline/serving.py).
    engine_workers: int = Field(default=1, ge=1, le=16)

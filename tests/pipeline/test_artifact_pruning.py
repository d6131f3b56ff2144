"""ArtifactPruner and `octavia cache`: what goes, in which order, and what is never touched."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from octavia.errors import BadInputError
from pipeline.artifacts import MAX_SIZE_ENV, ArtifactPruner, ArtifactStore, size_capped
from pipeline.dub import DubResult
from pipeline.job import run_job
from pipeline.records import DubRequest
from tests.factories import ffmpeg

NOW = float(int(time.time()))  # the CLI test runs against the real clock
DAY = 86_400.0


def put(store: ArtifactStore, stage: str, key: str, size: int, days_unused: float) -> Path:
    store.put_array(stage, key, np.zeros(size // 8, np.float64))
    path = store.root / stage / key[:2] / f"{key}.npy"
    used = NOW - days_unused * DAY
    os.utime(path, (used, used))
    return path


@pytest.fixture
def store(tmp_path: Path) -> ArtifactStore:
    store = ArtifactStore(tmp_path / "artifacts")
    put(store, "lines", "aa01", 8_000, days_unused=40)
    put(store, "lines", "aa02", 8_000, days_unused=20)
    put(store, "chunks", "bb01", 16_000, days_unused=10)
    put(store, "vocals", "cc01", 32_000, days_unused=0.1)  # used two hours ago: a dub may be running
    return store


def present(store: ArtifactStore) -> set[str]:
    return {p.stem for p in store.root.rglob("*") if p.is_file()}


def test_usage_per_stage(store: ArtifactStore) -> None:
    usage = {u.stage: (u.files, u.bytes) for u in ArtifactPruner(store).usage()}
    header = 128  # of each .npy file
    assert usage == {"chunks": (1, 16_000 + header), "lines": (2, 16_000 + 2 * header), "vocals": (1, 32_000 + header)}


def test_what_no_run_used_for_a_while_goes(store: ArtifactStore) -> None:
    result = ArtifactPruner(store).prune(unused_for=15 * DAY, now=NOW)
    assert present(store) == {"bb01", "cc01"}
    assert result.removed_files == 2 and result.kept_files == 2
    assert not (store.root / "lines").exists()  # emptied folders go too


def test_a_size_cap_removes_the_least_recently_used_first_but_never_what_is_in_use(store: ArtifactStore) -> None:
    pruner = ArtifactPruner(store)
    result = pruner.prune(max_bytes=50_000, now=NOW)
    assert present(store) == {"bb01", "cc01"}  # 40 and 20 days unused went first; 10 days is under the cap
    result = pruner.prune(max_bytes=0, now=NOW)
    assert present(store) == {"cc01"}  # within the grace period, kept above the cap
    assert result.recent_bytes == result.kept_bytes > 32_000
    ArtifactPruner(store, grace=0).prune(max_bytes=0, now=NOW)
    assert present(store) == set()


def test_dry_run_counts_and_removes_nothing(store: ArtifactStore) -> None:
    before = present(store)
    dry = ArtifactPruner(store).prune(unused_for=15 * DAY, dry_run=True, now=NOW)
    assert present(store) == before
    assert (dry.removed_files, dry.kept_files) == (2, 2)


def test_leftovers_of_interrupted_writes_go_once_past_the_grace_period(store: ArtifactStore) -> None:
    folder = store.root / "lines" / "aa"
    stale, fresh = folder / ".tmp-stale.wav", folder / ".tmp-fresh.wav"
    for path, days in ((stale, 3), (fresh, 0.01)):
        path.write_bytes(b"x" * 100)
        os.utime(path, (NOW - days * DAY, NOW - days * DAY))
    ArtifactPruner(store).prune(unused_for=365 * DAY, now=NOW)
    assert not stale.exists() and fresh.exists()
    assert present(store) >= {"aa01", "aa02", "bb01", "cc01"}


def test_cli_info_and_prune(store: ArtifactStore) -> None:
    def octavia(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "octavia.cli", "cache", *args, "--artifact-dir", str(store.root)],
                              capture_output=True, text=True)  # fmt: skip

    info = octavia("info")
    assert info.returncode == 0, info.stderr
    assert str(store.root) in info.stdout and "lines" in info.stdout and "4 files" in info.stdout
    refused = octavia("prune")
    assert refused.returncode == 2 and "--older-than" in refused.stderr
    assert octavia("prune", "--max-size", "20X").returncode == 2
    pruned = octavia("prune", "--max-size", "0", "--grace", "0s")
    assert pruned.returncode == 0, pruned.stderr
    assert pruned.stdout.startswith("removed 4 files") and present(store) == set()


@pytest.fixture
def tune(tmp_path: Path) -> Path:
    """Three seconds without speech: a dub that runs every step but synthesis, in seconds."""
    path = tmp_path / "tune.m4a"
    ffmpeg("-f", "lavfi", "-i", "sine=frequency=330:duration=3", "-c:a", "aac", str(path))
    return path


def dub_locally(tune: Path, out: Path, store: ArtifactStore) -> DubResult:
    request = DubRequest(input=tune, targets=("es",), out_dir=out, profile="offline", separation="none")
    return run_job(request, local=True, artifact_dir=store.root)


def test_a_dub_ends_by_pruning_the_store_to_the_cap_it_is_given(store, tune, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv(MAX_SIZE_ENV, "1")
    before = present(store)
    result = dub_locally(tune, tmp_path / "out", store)
    assert result.ok and (tmp_path / "out" / "tune.es.m4a").exists()
    left = present(store)
    assert left & before == {"cc01"}  # what no run used for days went; the two-hour-old one stays
    assert left - before  # and so does what this dub wrote (within the grace period)


def test_without_a_cap_a_dub_prunes_nothing(store, tune, tmp_path, monkeypatch) -> None:
    monkeypatch.delenv(MAX_SIZE_ENV, raising=False)
    before = present(store)
    dub_locally(tune, tmp_path / "out", store)
    assert present(store) > before


def test_a_failed_dub_is_pruned_too(store) -> None:
    with pytest.raises(RuntimeError, match="stage failed"), size_capped(store, 0):
        raise RuntimeError("stage failed")
    assert present(store) == {"cc01"}


@pytest.mark.parametrize("value", ["lots", "-5G", "20X"])
def test_a_bad_cap_is_refused_before_any_work(store, tune, tmp_path, monkeypatch, value) -> None:
    monkeypatch.setenv(MAX_SIZE_ENV, value)
    before = present(store)
    with pytest.raises(BadInputError, match=MAX_SIZE_ENV):
        dub_locally(tune, tmp_path / "out", store)
    assert present(store) == before and not (tmp_path / "out").exists()

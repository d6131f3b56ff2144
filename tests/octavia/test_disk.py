"""A full disk is recognised however the writer reports it, and a run names it instead of failing with a bug's
traceback. The disks fill up for real: /dev/full for ffmpeg, a small tmpfs for libsndfile."""

from __future__ import annotations

import errno
import shutil
from pathlib import Path

import numpy as np
import pytest

from octavia.audio import AudioClip
from octavia.disk import full_disk_reported, is_disk_full
from octavia.errors import MediaProcessingError, StorageFullError
from pipeline.artifacts import ArtifactStore
from pipeline.media.ffmpeg import run_ffmpeg
from pipeline.mix import WavSink
from tests.factories import small_filesystem

TEN_SECONDS = AudioClip(np.zeros(480_000, np.float32), 48_000)  # 1.9 MB as float WAV, 0.96 MB as 16-bit


def test_ffmpeg_writing_to_a_full_device_is_a_full_disk():
    with pytest.raises(MediaProcessingError) as caught:
        run_ffmpeg(["-f", "lavfi", "-i", "anullsrc=r=48000", "-t", "5", "-f", "wav", "/dev/full"], what="write")
    assert is_disk_full(caught.value)


def test_other_failures_are_not_a_full_disk(tmp_path: Path):
    with pytest.raises(MediaProcessingError) as caught:
        run_ffmpeg(["-i", str(tmp_path / "missing.wav"), str(tmp_path / "out.wav")], what="convert")
    assert not is_disk_full(caught.value)
    assert not is_disk_full(PermissionError(errno.EACCES, "Permission denied", "/root"))
    assert not is_disk_full(RuntimeError("System error."))


def test_a_full_disk_is_found_under_the_errors_raised_from_it():
    try:
        try:
            raise OSError(errno.ENOSPC, "No space left on device", "/data/x.json")
        except OSError as inner:
            raise ValueError("the stage failed") from inner
    except ValueError as outer:
        assert is_disk_full(outer)
        assert is_disk_full(RuntimeError(f"a Ray task failed:\n{outer.__cause__!r}"))  # only the text survives


@pytest.mark.parametrize("writer", ["wav sink", "audio clip", "artifact store"])
def test_libsndfile_filling_a_disk_raises_a_full_disk_error(tmp_path: Path, writer: str):
    with small_filesystem(tmp_path / "fs", "1m") as fs:
        with pytest.raises(OSError) as caught:
            if writer == "wav sink":
                with WavSink(fs / "dub.wav", 48_000, 1) as sink:
                    sink.write(TEN_SECONDS.samples)
            elif writer == "audio clip":
                AudioClip(np.tile(TEN_SECONDS.samples, 2), 48_000).write(str(fs / "line.wav"))
            else:
                ArtifactStore(fs).put_audio("lines", "ab" * 32, TEN_SECONDS)
        assert caught.value.errno == errno.ENOSPC and is_disk_full(caught.value)
        if writer == "artifact store":  # nothing half-written under a key, no temporary file left
            assert [path for path in fs.rglob("*") if path.is_file()] == []


def test_a_run_names_a_full_disk_with_the_free_space_of_each_folder(tmp_path: Path):
    with (
        small_filesystem(tmp_path / "fs", "1m") as fs,
        pytest.raises(StorageFullError) as caught,
        full_disk_reported(output_folder=fs, artifact_cache=tmp_path),
        WavSink(fs / "dub.wav", 48_000, 1) as sink,
    ):
        sink.write(TEN_SECONDS.samples)
    error = caught.value
    assert error.code == "storage_full" and f"the output folder {fs}: " in error.message
    free = error.details["free_bytes"]
    assert free["output_folder"] < 1 << 20 and free["artifact_cache"] == shutil.disk_usage(tmp_path).free


def test_other_errors_pass_through_unchanged(tmp_path: Path):
    with pytest.raises(KeyError), full_disk_reported(output_folder=tmp_path):
        raise KeyError("a bug stays a bug")

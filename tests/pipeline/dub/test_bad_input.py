"""Bad input at the CLI: a clear message, a non-zero exit, nothing under a final name, Ray never started."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.factories import ffmpeg


def dub(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "octavia.cli", "dub", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "OCTAVIA_PROFILE": "offline"},
    )


@pytest.fixture
def out(tmp_path: Path) -> Path:
    return tmp_path / "out"


def assert_clean_failure(result: subprocess.CompletedProcess[str], out: Path, code: str) -> None:
    assert result.returncode == 2, result.stderr
    assert f"error[{code}]" in result.stderr
    assert "Traceback" not in result.stderr
    assert not out.exists() or not any(out.iterdir())


def test_missing_file(tmp_path, out):
    result = dub(str(tmp_path / "nope.mp4"), "--to", "es", "--out", str(out))
    assert_clean_failure(result, out, "input_not_found")


def test_not_a_media_file(tmp_path, out):
    fake = tmp_path / "notes.mp4"
    fake.write_text("this is not a video\n" * 50)
    assert_clean_failure(dub(str(fake), "--to", "es", "--out", str(out)), out, "not_media")


def test_video_without_audio(tmp_path, out):
    silent = tmp_path / "silent.mp4"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=160x120:duration=1", "-c:v", "libx264", "-preset", "ultrafast",
           str(silent))  # fmt: skip
    assert_clean_failure(dub(str(silent), "--to", "es", "--out", str(out)), out, "no_audio_stream")


def test_empty_file(tmp_path, out):
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    assert_clean_failure(dub(str(empty), "--to", "es", "--out", str(out)), out, "empty_media")


def test_unsupported_pair_names_the_available_ones(conversation, out):
    result = dub(str(conversation.path), "--to", "ja", "--from", "en", "--out", str(out))
    assert_clean_failure(result, out, "unsupported_language_pair")
    assert "en->es" in result.stderr


def test_unknown_language_code(conversation, out):
    assert_clean_failure(dub(str(conversation.path), "--to", "xx", "--out", str(out)), out, "unsupported_language")


def test_bad_speakers_value(conversation, out):
    result = dub(str(conversation.path), "--to", "es", "--speakers", "two", "--out", str(out))
    assert result.returncode == 2 and "--speakers" in result.stderr and "Traceback" not in result.stderr

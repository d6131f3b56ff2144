"""Bad input at the CLI: a clear message, a non-zero exit, nothing under a final name, Ray never started."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.factories import dub_stopped_by_sigterm, ffmpeg, small_filesystem


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


def test_sigterm_mid_run_leaves_no_half_written_outputs(conversation, artifact_dir, tmp_path):
    """`kill` of a running dub (or a container stopping) unwinds it: the hidden partial folder, which exists from
    the synthesis stage on, is removed, and nothing appears under a final name. (The session's artifact store:
    its analysis is the other local dubs' too.)"""
    import signal

    out = tmp_path / "out"
    env = {**os.environ, "OCTAVIA_ARTIFACT_DIR": str(artifact_dir), "OCTAVIA_PROFILE": "offline"}
    args = [str(conversation.path), "--to", "es", "--out", str(out), "--local", "--separation", "none"]
    code, stderr = dub_stopped_by_sigterm(args, env, ready=lambda: bool(list(out.glob(".octavia-partial-*"))))
    assert code == 128 + signal.SIGTERM, stderr[-2000:]
    assert list(out.iterdir()) == []


@pytest.mark.parametrize("where", ["is_a_file", "under_a_file"])
def test_an_out_dir_that_cannot_be_made_is_refused_before_any_work(conversation, tmp_path, where):
    blocker = tmp_path / "taken"
    blocker.write_text("a file where the outputs would go\n")
    out = blocker if where == "is_a_file" else blocker / "dubs"
    result = dub(str(conversation.path), "--to", "es", "--out", str(out))
    assert result.returncode == 2, result.stderr
    assert "error[bad_input]: --out" in result.stderr and "Traceback" not in result.stderr
    assert "is a file" in result.stderr if where == "under_a_file" else "is not a directory" in result.stderr
    assert blocker.read_text() == "a file where the outputs would go\n"
    assert "prepare" not in result.stderr  # refused before the run started


def test_an_out_dir_that_cannot_be_written_is_refused_before_any_work(conversation, tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o555)
    command = [sys.executable, "-m", "octavia.cli", "dub", str(conversation.path), "--to", "es",
               "--out", str(locked / "dubs")]  # fmt: skip
    if os.geteuid() == 0:  # root writes anywhere: drop the capabilities that let it
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            pytest.skip("running as root without setpriv (util-linux)")
        caps = "-dac_override,-dac_read_search"
        command = [setpriv, f"--inh-caps={caps}", f"--bounding-set={caps}", *command]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120,
                            env={**os.environ, "OCTAVIA_PROFILE": "offline"})  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert f"error[bad_input]: --out {locked / 'dubs'} cannot be written: {locked} is not writable" in result.stderr
    assert "Traceback" not in result.stderr and not any(locked.iterdir())


def test_a_full_disk_is_named_and_the_run_leaves_nothing_on_it(conversation, artifact_dir, tmp_path):
    """The output folder on a 2 MB disk: the dub fills it while it mixes and is told so, not with a traceback;
    the partial files go, so the disk is as empty as before. (The session's artifact store: analysis cached.)"""
    env = {**os.environ, "OCTAVIA_ARTIFACT_DIR": str(artifact_dir), "OCTAVIA_PROFILE": "offline"}
    with small_filesystem(tmp_path / "disk", "2m") as disk:
        out = disk / "out"
        result = subprocess.run(
            [sys.executable, "-m", "octavia.cli", "dub", str(conversation.path), "--to", "es", "--out", str(out),
             "--local", "--separation", "none"],
            capture_output=True, text=True, timeout=300, env=env,
        )  # fmt: skip
        assert result.returncode == 2, result.stderr[-2000:]
        assert f"error[storage_full]: no space left on device. Free now, with this run's partial files removed: " \
               f"the output folder {out}: " in result.stderr  # fmt: skip
        assert "Traceback" not in result.stderr
        assert [path for path in disk.rglob("*") if path.is_file()] == []

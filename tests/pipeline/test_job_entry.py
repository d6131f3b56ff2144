"""`python -m pipeline.job`'s exit codes and final progress report: what the control plane reads of a run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pipeline import job, progress


class RecordingReporter:
    def __init__(self, url: str, token: str, targets: tuple[str, ...]) -> None:
        self.finished: list[tuple[str, dict[str, Any] | None]] = []
        self.warnings: list[str] = []
        reporters.append(self)

    def __call__(self, event: Any) -> None:
        pass

    def finish(
        self, status: str, *, error: dict[str, Any] | None = None, media_duration: float | None = None, warnings=()
    ):
        self.finished.append((status, error))
        self.warnings.extend(warnings)


reporters: list[RecordingReporter] = []


@pytest.fixture
def recorded(monkeypatch) -> list[RecordingReporter]:
    reporters.clear()
    monkeypatch.setattr(progress, "HttpProgressReporter", RecordingReporter)
    return reporters


def args(tmp_path: Path, *extra: str) -> list[str]:
    media = tmp_path / "in.mp4"
    media.write_bytes(b"x")
    return ["--input", str(media), "--to", "es", "--out", str(tmp_path / "out"), "--progress-url", "http://x", *extra]


def test_a_bug_in_the_run_is_reported_as_an_internal_error_not_as_bad_input(tmp_path, recorded, monkeypatch):
    def broken(*_: Any, **__: Any) -> None:
        raise ValueError("a bug deep in the assembly")

    monkeypatch.setattr(job, "run_job", broken)
    assert job.main(args(tmp_path)) == job.EXIT_ERROR
    [(status, error)] = recorded[0].finished
    assert status == "failed" and error == {
        "code": "internal_error",
        "message": "ValueError: a bug deep in the assembly",
    }


def test_bad_arguments_exit_as_bad_input(tmp_path, recorded):
    assert job.main(args(tmp_path, "--speakers", "two")) == job.EXIT_BAD_INPUT
    assert job.main(args(tmp_path, "--max-speedup", "9")) == job.EXIT_BAD_INPUT
    with pytest.raises(SystemExit) as exit_:
        job.main(args(tmp_path, "--parallelism", "0"))
    assert exit_.value.code == 2  # argparse's own usage error
    assert recorded == []  # no run started, nothing to report to


def test_bad_input_found_by_the_run_is_reported_with_its_code(tmp_path, recorded):
    assert job.main(args(tmp_path, "--profile", "offline")) == job.EXIT_BAD_INPUT  # one byte: not media
    [(status, error)] = recorded[0].finished
    assert status == "failed" and error is not None and error["code"] == "not_media"


def test_a_run_that_succeeded_with_doubts_reports_them(tmp_path, recorded, monkeypatch):
    from pipeline.dub import DubResult

    doubt = "the source was given as 'es' but the speech sounds like 'en' (94% sure): ..."
    done = DubResult(out_dir=tmp_path, source_language="es", duration=6.0, outputs={}, warnings=[doubt])
    monkeypatch.setattr(job, "run_job", lambda *_, **__: done)
    assert job.main(args(tmp_path, "--from", "es")) == 0
    assert recorded[0].finished == [("succeeded", None)] and recorded[0].warnings == [doubt]

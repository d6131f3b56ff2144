"""Kill a dub part-way, run it again: finished chunks come from the artifact cache, the rest is computed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from pipeline.job import run_job
from pipeline.records import DubRequest


def chunk_records(artifacts):
    return sorted((artifacts / "chunks").rglob("*.json")) if (artifacts / "chunks").exists() else []


def test_killed_run_resumes_without_recomputing_finished_chunks(conversation, tmp_path):
    artifacts, out = tmp_path / "artifacts", tmp_path / "out"
    cmd = [sys.executable, "-m", "pipeline.job", "--local", "--input", str(conversation.path), "--to", "es",
           "--out", str(out), "--profile", "offline", "--separation", "none", "--max-chunk-seconds", "6"]  # fmt: skip
    driver = subprocess.Popen(
        cmd, env={**os.environ, "OCTAVIA_ARTIFACT_DIR": str(artifacts)}, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 240
        while not chunk_records(artifacts) and driver.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        driver.send_signal(signal.SIGKILL)  # the driver dies mid-run, as on a crash or an OOM kill
        driver.wait()
    finally:
        if driver.poll() is None:
            driver.kill()
    finished = {p.name: p.stat().st_mtime_ns for p in chunk_records(artifacts)}
    assert finished, "the driver was killed before it finished any chunk"
    assert not (out.exists() and any(p.suffix in (".mp4", ".json") for p in out.iterdir()))

    request = DubRequest(
        input=conversation.path, targets=("es",), out_dir=out, profile="offline", separation="none",
        max_chunk_seconds=6,
    )  # fmt: skip
    result = run_job(request, local=True, artifact_dir=artifacts)
    assert result.ok
    total = result.chunks_cached + result.chunks_computed
    assert total >= 3
    assert result.chunks_cached == len(finished) < total
    # The chunks finished before the kill were not written again.
    assert all(p.stat().st_mtime_ns == finished[p.name] for p in chunk_records(artifacts) if p.name in finished)
    assert (out / "talk.es.mp4").exists()

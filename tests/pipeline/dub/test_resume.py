"""Kill a dub part-way, run it again: finished chunks come from the artifact cache, the rest is computed. Once
in one process (`--local`), once on the embedded Ray cluster, where the chunks are analysed by Ray Data actors
through the Serve deployments and the killed driver takes its cluster down with it."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time

import psutil
import pytest

from pipeline.job import run_job
from pipeline.records import DubRequest


def chunk_records(artifacts):
    return sorted((artifacts / "chunks").rglob("*.json")) if (artifacts / "chunks").exists() else []


def finished_chunks(artifacts):
    """Chunk records stored so far: name -> mtime (a re-run must leave these untouched)."""
    return {p.name: p.stat().st_mtime_ns for p in chunk_records(artifacts)}


def dub_command(conversation, out, *extra):
    return [sys.executable, "-m", "pipeline.job", *extra, "--input", str(conversation.path), "--to", "es",
            "--out", str(out), "--profile", "offline", "--separation", "none", "--max-chunk-seconds", "6"]  # fmt: skip


def kill_after_first_chunk(cmd, env, artifacts, out):
    """Starts the dub, SIGKILLs its driver (as on a crash or an OOM kill) once a chunk is in the artifact store;
    returns the finished chunks (name -> mtime) and every process the driver had started."""
    driver = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    children: list[psutil.Process] = []
    try:
        deadline = time.monotonic() + 300
        while not chunk_records(artifacts) and driver.poll() is None and time.monotonic() < deadline:
            children = psutil.Process(driver.pid).children(recursive=True) or children
            time.sleep(0.1)
        driver.send_signal(signal.SIGKILL)
        driver.wait()
    finally:
        if driver.poll() is None:
            driver.kill()
    finished = finished_chunks(artifacts)
    assert finished, "the driver was killed before any chunk was finished"
    assert not (out.exists() and any(p.suffix in (".mp4", ".json") for p in out.iterdir()))
    return finished, children


def test_killed_run_resumes_without_recomputing_finished_chunks(conversation, tmp_path):
    artifacts, out = tmp_path / "artifacts", tmp_path / "out"
    env = {**os.environ, "OCTAVIA_ARTIFACT_DIR": str(artifacts)}
    finished, _ = kill_after_first_chunk(dub_command(conversation, out, "--local"), env, artifacts, out)

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


@pytest.mark.slow
def test_killed_ray_run_resumes_without_recomputing_finished_chunks(conversation, tmp_path):
    artifacts, out = tmp_path / "artifacts", tmp_path / "out"
    cmd = dub_command(conversation, out)
    env = {**os.environ, "OCTAVIA_ARTIFACT_DIR": str(artifacts), "RAY_ADDRESS": ""}
    finished, cluster = kill_after_first_chunk(cmd, env, artifacts, out)
    # The embedded cluster (raylet, GCS, Serve replicas, Data actors) shares the driver's fate. Ray's two node
    # agents outlive their raylet by more than a minute (Ray's own behaviour, seen here): they hold no work and
    # no files of the dub, and are stopped here so that they do not linger after the test.
    assert cluster, "no Ray processes were seen"
    _, alive = psutil.wait_procs(cluster, timeout=60)
    survivors = {p: name for p in alive if (name := _live_name(p))}
    assert set(survivors.values()) <= {"ray::DashboardAgent", "ray::RuntimeEnvAgent"}, survivors
    for p in survivors:
        with contextlib.suppress(psutil.Error):
            p.kill()
    # Data actors run in their own processes and may finish the chunk they were on between the driver's death
    # and their own: what the re-run may take from the cache is what was stored once the cluster was gone.
    finished = finished_chunks(artifacts)

    rerun = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    counts = re.search(r"chunks: (\d+) from the artifact cache, (\d+) computed", rerun.stderr)
    cached, computed = int(counts.group(1)), int(counts.group(2))
    assert cached == len(finished) and computed >= 1 and cached + computed >= 3
    assert all(p.stat().st_mtime_ns == finished[p.name] for p in chunk_records(artifacts) if p.name in finished)
    assert (out / "talk.es.mp4").exists()
    # Its own cluster drops the per-chunk models once the chunks are analysed, and the translation models once
    # every target is translated, before synthesis starts.
    log = rerun.stderr
    released = log.index("deleted the Serve applications asr, diarize: this run calls them no more")
    translated = log.index("deleted the Serve applications translate: this run calls them no more")
    synthesis = log.index("Starting execution of Dataset dub talk.mp4 -> es: tts es")
    assert log.index("analyze: ") < released < log.index("translate es: ") < translated < synthesis


def _live_name(process: psutil.Process) -> str | None:
    """The name of a process that still runs (not a zombie), None once it is gone."""
    try:
        return None if process.status() == psutil.STATUS_ZOMBIE else process.name()
    except psutil.Error:
        return None

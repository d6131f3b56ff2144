"""Kill a dub part-way, run it again: finished chunks come from the artifact cache, the rest is computed. Once
in one process (`--local`), once on the embedded Ray cluster, where the chunks are analysed by Ray Data actors
through the Serve deployments and the killed driver takes its cluster down with it. The Ray run is an audio-only
input into two languages without separation, and its re-run's outputs are checked as such."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest

from pipeline.job import run_job
from pipeline.media.probe import probe_media
from pipeline.records import DubRequest, TranscriptDocument
from pipeline.samples import Sample

# Ray's two node agents outlive their raylet by more than a minute after the driver's SIGKILL (Ray's own
# behaviour, seen here); they hold no work and no files of the dub.
LINGERING_AGENTS = frozenset({"ray::DashboardAgent", "ray::RuntimeEnvAgent"})


def chunk_records(artifacts):
    return sorted((artifacts / "chunks").rglob("*.json")) if (artifacts / "chunks").exists() else []


def finished_chunks(artifacts):
    """Chunk records stored so far: name -> mtime (a re-run must leave these untouched)."""
    return {p.name: p.stat().st_mtime_ns for p in chunk_records(artifacts)}


def dub_command(sample, out, *extra, to="es"):
    return [sys.executable, "-m", "pipeline.job", *extra, "--input", str(sample.path), "--to", to,
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
    assert not (out.exists() and any(p.suffix in (".mp4", ".m4a", ".json") for p in out.iterdir()))
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


@dataclass(frozen=True)
class ResumedRayRun:
    finished: dict[str, int]  # chunk records stored before the re-run: name -> mtime
    artifacts: Path
    out: Path
    log: str  # the re-run's log


@pytest.fixture(scope="module")
def podcast(tmp_path_factory) -> Sample:
    from pipeline.samples import make_conversation

    # A non-ASCII name on purpose: Ray's metric tags (Ray Data tags with the dataset name) must be ASCII.
    return make_conversation(tmp_path_factory.mktemp("audio") / "pódcast.m4a", gap=1.2, video=False,
                             with_music=False)  # fmt: skip


@pytest.fixture(scope="module")
def resumed_ray_run(podcast, tmp_path_factory) -> ResumedRayRun:
    """An audio-only dub into es and pt on its own embedded cluster, SIGKILLed after its first chunk, then run
    again to the end."""
    artifacts, out = tmp_path_factory.mktemp("ray-artifacts"), tmp_path_factory.mktemp("ray") / "out"
    cmd = dub_command(podcast, out, to="es,pt")
    env = {**os.environ, "OCTAVIA_ARTIFACT_DIR": str(artifacts), "RAY_ADDRESS": ""}
    _, cluster = kill_after_first_chunk(cmd, env, artifacts, out)
    # The embedded cluster (raylet, GCS, Serve replicas, Data actors) shares the driver's fate, except Ray's node
    # agents, which are stopped here so that they do not linger after the test.
    assert cluster, "no Ray processes were seen"
    names = {p: _live_name(p) for p in cluster}
    agents = [p for p, name in names.items() if name in LINGERING_AGENTS]
    _, alive = psutil.wait_procs([p for p in cluster if p not in agents], timeout=60)
    assert not {p: name for p in alive if (name := _live_name(p))}, "Ray processes outlived the killed driver"
    for p in agents:
        with contextlib.suppress(psutil.Error):
            p.kill()
    # Data actors run in their own processes and may finish the chunk they were on between the driver's death
    # and their own: what the re-run may take from the cache is what was stored once the cluster was gone.
    finished = finished_chunks(artifacts)

    rerun = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    return ResumedRayRun(finished=finished, artifacts=artifacts, out=out, log=rerun.stderr)


@pytest.mark.slow
def test_killed_ray_run_resumes_without_recomputing_finished_chunks(resumed_ray_run):
    run = resumed_ray_run
    counts = re.search(r"chunks: (\d+) from the artifact cache, (\d+) computed", run.log)
    cached, computed = int(counts.group(1)), int(counts.group(2))
    assert cached == len(run.finished) and computed >= 1 and cached + computed >= 3
    assert all(p.stat().st_mtime_ns == run.finished[p.name] for p in chunk_records(run.artifacts)
               if p.name in run.finished)  # fmt: skip


@pytest.mark.slow
def test_its_own_cluster_drops_each_model_once_the_run_calls_it_no_more(resumed_ray_run):
    """The per-chunk models go once the chunks are analysed (no separation model was deployed), the translation
    models once every target is translated, before synthesis starts."""
    log = resumed_ray_run.log
    released = log.index("deleted the Serve applications asr, diarize: this run calls them no more")
    translated = log.index("deleted the Serve applications translate: this run calls them no more")
    synthesis = re.search(r"tts es: \d+ lines to do", log).start()  # type: ignore[union-attr]
    assert log.index("analyze: ") < released < log.index("translate pt: ") < translated < synthesis


@pytest.mark.slow
def test_audio_only_input_gets_both_languages_from_one_analysis(resumed_ray_run, podcast):
    out, log = resumed_ray_run.out, resumed_ray_run.log
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted(
        [f"pódcast.{lang}.{ext}" for lang in ("es", "pt") for ext in ("m4a", "srt", "vtt", "wav")]
        + ["pódcast.en.srt", "pódcast.transcript.json"]
    )
    # One analysis for both languages; the dataset's name is folded to ASCII.
    assert len(re.findall(r"Starting execution of Dataset dub podcast\.m4a -> es,pt: analyze", log)) == 1
    for lang, tag in (("es", "spa"), ("pt", "por")):
        info = probe_media(out / f"pódcast.{lang}.m4a")
        assert not info.video and [a.language for a in info.audio] == [tag]
        assert info.duration == pytest.approx(podcast.duration, abs=0.05)
    doc = TranscriptDocument.model_validate_json((out / "pódcast.transcript.json").read_text())
    assert set(doc.languages) == {"es", "pt"} and doc.run.separation == "none"
    assert doc.translations["pt"][0].text != doc.translations["es"][0].text


def _live_name(process: psutil.Process) -> str | None:
    """The name of a process that still runs (not a zombie), None once it is gone."""
    try:
        return None if process.status() == psutil.STATUS_ZOMBIE else process.name()
    except psutil.Error:
        return None

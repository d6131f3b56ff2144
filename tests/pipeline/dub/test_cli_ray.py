"""`octavia dub` end to end on the embedded Ray cluster: every model a Serve application, the chunks a Ray Data job,
Spleeter separation on — the path users take, checked by its outputs."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from octavia.audio import AudioClip
from pipeline.media.probe import probe_media
from pipeline.records import TranscriptDocument
from tests.factories import video_md5

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def ray_dub(conversation, tmp_path_factory):
    out = tmp_path_factory.mktemp("ray-out")
    ray_tmp = Path(tempfile.mkdtemp(prefix="ray-", dir="/tmp"))  # short: Ray's socket paths live under it
    env = {
        **os.environ,
        "OCTAVIA_ARTIFACT_DIR": str(tmp_path_factory.mktemp("ray-artifacts")),
        "RAY_ADDRESS": "",  # never a cluster the machine happens to run: the CLI starts its own
        "RAY_TMPDIR": str(ray_tmp),  # this run's Ray session and its logs, apart from any other
    }
    result = subprocess.run(
        [sys.executable, "-m", "octavia.cli", "dub", str(conversation.path), "--to", "es", "--out", str(out),
         "--profile", "offline", "--separation", "spleeter", "--keep-original-audio", "--max-speedup", "1.6"],
        capture_output=True, text=True, timeout=600, env=env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-4000:]
    doc = TranscriptDocument.model_validate_json((out / "talk.transcript.json").read_text())
    data_logs = sorted(p.name for p in ray_tmp.glob("ray/session_*/logs/ray-data/*.log"))
    yield result, doc, out, data_logs
    shutil.rmtree(ray_tmp, ignore_errors=True)


def test_every_output_of_the_contract_and_nothing_else(ray_dub):
    _, doc, out, _ = ray_dub
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted(
        ["talk.es.mp4", "talk.es.srt", "talk.es.vtt", "talk.es.wav", "talk.en.srt", "talk.background.wav",
         "talk.transcript.json"]
    )  # fmt: skip
    assert doc.run.separation == "spleeter-2stems"


def test_ran_on_serve_and_data_under_a_name_that_says_input_and_languages(ray_dub):
    *_, data_logs = ray_dub
    # Ray Data logs each dataset to a file named after it; the same name is shown in the dashboard. The chunks are
    # a Ray Data job; the lines are sent to the TTS application from the driver's threads, with no dataset.
    assert any(re.fullmatch(r"ray-data-dub talk\.mp4 -> es: analyze_\w+\.log", name) for name in data_logs)
    assert not any("tts" in name for name in data_logs)


def test_the_console_shows_progress_and_outputs_not_rays_chatter(ray_dub):
    result, *_ = ray_dub
    assert "analyze" in result.stderr and "synthesize:es" in result.stderr  # the progress bars
    # Ray's INFO lines (Serve starting and deleting apps, Ray Data's plans) are in the session's logs only.
    for chatter in ("Started Serve", "Deleting app", "Starting execution of Dataset", "Progress bars disabled"):
        assert chatter not in result.stderr
    assert not re.search(r"^\S* ?INFO ", result.stderr, re.MULTILINE)


def test_video_copied_tracks_tagged_and_length_kept(ray_dub, conversation):
    _, doc, out, _ = ray_dub
    source = probe_media(conversation.path)
    dub = probe_media(out / "talk.es.mp4")
    assert [a.language for a in dub.audio] == ["spa", "eng"]
    mix = AudioClip.read(str(out / "talk.es.wav"))
    assert not doc.languages["es"].plan.has_slowdown  # --max-speedup 1.6 leaves room for every line
    assert doc.run.request.max_speedup == 1.6
    assert video_md5(out / "talk.es.mp4") == video_md5(conversation.path)
    assert dub.duration == pytest.approx(source.duration, abs=0.05)
    assert mix.duration == pytest.approx(source.duration, abs=0.05)
    background = AudioClip.read(str(out / "talk.background.wav"))
    assert background.duration == pytest.approx(source.duration, abs=0.05)


def test_two_speakers_two_voices_and_spanish_speech(ray_dub, model_store):
    from serve_apps.asr.engine import FasterWhisperEngine

    _, doc, out, _ = ray_dub
    assert doc.source_language == "en"
    assert len(doc.speakers) == 2
    assert len({s.voices["es"] for s in doc.speakers}) == 2
    heard = FasterWhisperEngine(model_store.resolve("whisper-base"), beam_size=1).transcribe(
        AudioClip.read(str(out / "talk.es.wav"))
    )
    assert heard.language == "es"


def test_subtitles_follow_the_fitted_lines(ray_dub):
    import pysubs2

    _, doc, out, _ = ray_dub
    lines = [line for line in doc.languages["es"].lines if line.fit]
    assert len(lines) == len(doc.segments) >= 5
    subs = pysubs2.load(str(out / "talk.es.srt"))
    assert [e.start for e in subs] == [round(line.fit.start * 1000) for line in lines]

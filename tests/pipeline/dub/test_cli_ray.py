"""`octavia dub` end to end on the embedded Ray cluster: every model a Serve application, chunks and lines as Ray Data
jobs, Spleeter separation on — the path users take, checked by its outputs."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from octavia.audio import AudioClip
from pipeline.media.probe import probe_media
from pipeline.records import TranscriptDocument
from tests.factories import video_md5

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def ray_dub(conversation, tmp_path_factory):
    out = tmp_path_factory.mktemp("ray-out")
    env = {
        **os.environ,
        "OCTAVIA_ARTIFACT_DIR": str(tmp_path_factory.mktemp("ray-artifacts")),
        "RAY_ADDRESS": "",  # never a cluster the machine happens to run: the CLI starts its own
    }
    result = subprocess.run(
        [sys.executable, "-m", "octavia.cli", "dub", str(conversation.path), "--to", "es", "--out", str(out),
         "--profile", "offline", "--separation", "spleeter", "--keep-original-audio", "--max-speedup", "1.6"],
        capture_output=True, text=True, timeout=600, env=env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-4000:]
    doc = TranscriptDocument.model_validate_json((out / "talk.transcript.json").read_text())
    return result, doc, out


def test_every_output_of_the_contract_and_nothing_else(ray_dub):
    _, doc, out = ray_dub
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted(
        ["talk.es.mp4", "talk.es.srt", "talk.es.vtt", "talk.es.wav", "talk.en.srt", "talk.background.wav",
         "talk.transcript.json"]
    )  # fmt: skip
    assert doc.run.separation == "spleeter-2stems"


def test_ran_on_serve_and_data_under_a_name_that_says_input_and_languages(ray_dub):
    result, _, _ = ray_dub
    # Ray Data logs each stage's dataset by name; the same name is the job's name in the dashboard.
    assert re.search(r"Dataset dub talk\.mp4 -> es: analyze", result.stderr)
    assert re.search(r"Dataset dub talk\.mp4 -> es: tts es", result.stderr)


def test_video_copied_tracks_tagged_and_length_kept(ray_dub, conversation):
    _, doc, out = ray_dub
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

    _, doc, out = ray_dub
    assert doc.source_language == "en"
    assert len(doc.speakers) == 2
    assert len({s.voices["es"] for s in doc.speakers}) == 2
    heard = FasterWhisperEngine(model_store.resolve("whisper-base"), beam_size=1).transcribe(
        AudioClip.read(str(out / "talk.es.wav"))
    )
    assert heard.language == "es"


def test_subtitles_follow_the_fitted_lines(ray_dub):
    import pysubs2

    _, doc, out = ray_dub
    lines = [line for line in doc.languages["es"].lines if line.fit]
    assert len(lines) == len(doc.segments) >= 5
    subs = pysubs2.load(str(out / "talk.es.srt"))
    assert [e.start for e in subs] == [round(line.fit.start * 1000) for line in lines]

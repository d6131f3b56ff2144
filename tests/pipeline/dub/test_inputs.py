"""Inputs unlike the fixtures: no speech at all; portrait VP9 in Matroska, 48 kHz stereo, the picture longer
than the sound; 8 kHz mono."""

from __future__ import annotations

import pytest

from octavia.audio import AudioClip
from pipeline import stages
from pipeline.job import run_job
from pipeline.media.probe import probe_media
from pipeline.records import DubRequest, TranscriptDocument
from pipeline.samples import make_conversation, music
from tests.factories import ffmpeg


def test_speech_free_input_keeps_its_soundtrack(tmp_path, artifact_dir, monkeypatch):
    stage_clients = []  # what each stage builds: a local run's thread cap must reach them (bench case "local")
    build = stages.make_clients
    monkeypatch.setattr(stages, "make_clients", lambda ctx: stage_clients.append(build(ctx)) or stage_clients[-1])
    score = tmp_path / "score.wav"
    AudioClip(music(6.0, 44_100, level_db=-14), 44_100).write(str(score))
    video = tmp_path / "score.mp4"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=160x120:rate=25:duration=6", "-i", str(score), "-c:v", "libx264",
           "-preset", "ultrafast", "-c:a", "aac", "-shortest", str(video))  # fmt: skip
    out = tmp_path / "out"
    result = run_job(DubRequest(input=video, targets=("es",), out_dir=out, profile="offline", separation="none"),
                     local=True, artifact_dir=artifact_dir, local_threads=1)  # fmt: skip
    assert result.ok
    assert stage_clients and [c.cpu_threads for c in stage_clients] == [1] * len(stage_clients)
    doc = TranscriptDocument.model_validate_json((out / "score.transcript.json").read_text())
    assert doc.segments == () and doc.languages["es"].lines == ()
    dub = probe_media(out / "score.es.mp4")
    assert dub.duration == pytest.approx(probe_media(video).duration, abs=0.05)
    mixed = AudioClip.read(str(out / "score.es.wav"))
    assert float(abs(mixed.samples).max()) > 0.05  # the music is still there


def test_portrait_vp9_matroska_stereo_48k_picture_longer_than_its_sound(conversation, tmp_path, artifact_dir):
    """The picture runs 3 s past the end of the audio track: the dub keeps the whole picture, and its audio track
    runs to the end of it (silence after the sound ends), nothing cut at the sound's end."""
    mkv = tmp_path / "portrait.mkv"
    ffmpeg("-i", str(conversation.path), "-vf", "transpose=1,tpad=stop_mode=clone:stop_duration=3",
           "-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8", "-b:v", "200k",
           "-c:a", "libopus", "-ac", "2", "-ar", "48000", str(mkv))  # fmt: skip
    source = probe_media(mkv)
    assert source.video is not None and source.video.duration - source.audio[0].duration > 2.5
    out = tmp_path / "out"
    request = DubRequest(input=mkv, targets=("es",), out_dir=out, profile="offline", separation="none",
                         max_speedup=1.6)  # fmt: skip
    result = run_job(request, local=True, artifact_dir=artifact_dir)
    assert result.ok
    dub = probe_media(out / "portrait.es.mp4")
    assert dub.video is not None and dub.video.display_size[1] > dub.video.display_size[0]  # still portrait
    assert dub.video.codec == "vp9"  # copied, not re-encoded
    assert [a.language for a in dub.audio] == ["spa"]
    assert dub.duration == pytest.approx(source.duration, abs=0.06)
    assert dub.audio[0].duration == pytest.approx(source.video.duration, abs=0.06)
    doc = TranscriptDocument.model_validate_json((out / "portrait.transcript.json").read_text())
    assert len(doc.languages["es"].lines) == len(conversation.lines)


def test_telephone_band_mono_keeps_two_speakers_apart(conversation, tmp_path, artifact_dir):
    """8 kHz mono: Whisper gave each question and its answer as one segment; each speaker still gets their own
    lines, and their own voices."""
    wav = tmp_path / "call.wav"
    ffmpeg("-i", str(conversation.path), "-map", "0:a", "-ac", "1", "-ar", "8000", "-c:a", "pcm_s16le", str(wav))
    out = tmp_path / "out"
    request = DubRequest(input=wav, targets=("es",), out_dir=out, profile="offline", separation="none",
                         max_speedup=1.6)  # fmt: skip
    assert run_job(request, local=True, artifact_dir=artifact_dir).ok
    doc = TranscriptDocument.model_validate_json((out / "call.transcript.json").read_text())
    spoken = conversation.lines
    assert len(doc.segments) == len(spoken)
    # Each segment lies over one line of the sample and has that line's speaker: the speakers alternate.
    labels = [s.speaker for s in doc.segments]
    assert labels[0] != labels[1] and labels[::2] == [labels[0]] * len(labels[::2])
    assert labels[1::2] == [labels[1]] * len(labels[1::2])
    for segment, line in zip(doc.segments, spoken, strict=True):
        assert line.start < (segment.start + segment.end) / 2 < line.end
        assert segment.start > line.start - 0.6 and segment.end < line.end + 0.6  # the gaps are 1.2 s
    assert len({s.voices["es"] for s in doc.speakers}) == 2


def test_a_source_language_the_speech_contradicts_is_dubbed_with_a_warning(tmp_path, artifact_dir):
    """English speech declared Spanish (`--from es`): the run does what it was told, as the user may know better,
    but says on stderr and in the transcript that the speech sounds English and how sure the ASR is. The speech
    starts after 65 s of music, so the first chunk has none: the check goes to the chunk that has it."""
    import os
    import subprocess
    import sys

    talk = make_conversation(tmp_path / "talk.m4a", gap=1.2, lead=65.0, video=False)
    out = tmp_path / "out"
    env = {**os.environ, "OCTAVIA_ARTIFACT_DIR": str(artifact_dir), "OCTAVIA_PROFILE": "offline"}
    result = subprocess.run(
        [sys.executable, "-m", "octavia.cli", "dub", str(talk.path), "--to", "en", "--from", "es",
         "--out", str(out), "--local", "--separation", "none", "--max-speedup", "1.6"],
        capture_output=True, text=True, timeout=600, env=env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    [warning] = [line for line in result.stderr.splitlines() if line.startswith("warning: ")]
    assert "given as 'es'" in warning and "sounds like 'en'" in warning
    doc = TranscriptDocument.model_validate_json((out / "talk.transcript.json").read_text())
    assert doc.source_language == "es" and doc.warnings == (warning.removeprefix("warning: "),)
    assert doc.segments[0].start > 64.0
    assert (out / "talk.en.m4a").exists()

"""A real dub (every stage in-process, real offline models) and its output contract."""

from __future__ import annotations

import json
import re

import pysubs2
import pytest

from octavia.audio import AudioClip
from pipeline.job import run_job
from pipeline.media.probe import probe_media
from pipeline.records import DubRequest, TranscriptDocument
from tests.factories import frame_times, video_md5


@pytest.fixture(scope="module")
def dubbed(conversation, artifact_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("out")
    request = DubRequest(
        input=conversation.path,
        targets=("es",),
        out_dir=out,
        profile="offline",
        separation="none",
        keep_original_audio=True,
        max_speedup=1.6,
    )
    result = run_job(request, local=True, artifact_dir=artifact_dir)
    doc = TranscriptDocument.model_validate_json((out / "talk.transcript.json").read_text())
    return result, doc, out


def test_output_contract_names_and_nothing_half_written(dubbed):
    result, _, out = dubbed
    assert result.ok
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted(
        ["talk.es.mp4", "talk.es.srt", "talk.es.vtt", "talk.es.wav", "talk.en.srt", "talk.transcript.json"]
    )


def test_duration_and_video_packets_unchanged_without_slowdown(dubbed, conversation):
    _, doc, out = dubbed
    assert not doc.languages["es"].plan.has_slowdown
    source = probe_media(conversation.path)
    dub = probe_media(out / "talk.es.mp4")
    assert dub.duration == pytest.approx(source.duration, abs=0.05)
    assert video_md5(out / "talk.es.mp4") == video_md5(conversation.path)
    mix = AudioClip.read(str(out / "talk.es.wav"))
    assert mix.duration == pytest.approx(source.duration, abs=0.05)


def test_audio_tracks_are_tagged(dubbed):
    _, _, out = dubbed
    info = probe_media(out / "talk.es.mp4")
    assert [a.language for a in info.audio] == ["spa", "eng"]  # the dub first, the original kept on request


def test_two_speakers_found_and_given_different_voices(dubbed, conversation):
    _, doc, _ = dubbed
    assert doc.source_language == "en"
    assert len(doc.speakers) == 2
    truth = {line.start: line.speaker for line in conversation.lines}
    # Each source line's segment carries the label of its true speaker, consistently.
    mapping: dict[str, str] = {}
    for seg in doc.segments:
        true = min(truth, key=lambda t: abs(t - seg.start))
        assert mapping.setdefault(seg.speaker, truth[true]) == truth[true]
    voices = {s.speaker: s.voices["es"] for s in doc.speakers}
    assert len(set(voices.values())) == 2
    male = next(s for s in doc.speakers if s.profile.gender == "male")
    assert voices[male.speaker] == "jm_kumo"


def test_dubbed_speech_lies_where_the_source_speech_was(dubbed, model_store):
    from serve_apps.asr.vad import SileroVad

    _, doc, out = dubbed
    dub_only = AudioClip.read(str(out / "talk.es.wav"))
    spans = SileroVad(model_store.resolve("silero-vad-v6")).speech_spans(dub_only, threshold=0.6)
    allowed = [(line.fit.source_start - 0.3, line.fit.end + 0.3) for line in doc.languages["es"].lines if line.fit]
    speech = sum(s.duration for s in spans)
    inside = sum(max(0.0, min(s.end, b) - max(s.start, a)) for s in spans for a, b in allowed)
    assert speech > 5.0
    assert inside / speech >= 0.9


def test_whisper_hears_spanish_in_the_dub(dubbed, model_store):
    from serve_apps.asr.engine import FasterWhisperEngine

    _, _, out = dubbed
    asr = FasterWhisperEngine(model_store.resolve("whisper-base"), beam_size=1)
    heard = asr.transcribe(AudioClip.read(str(out / "talk.es.wav")))
    assert heard.language == "es"
    assert re.search(r"libro|casa|gracias|buenos", heard.text.lower())


def test_subtitle_cues_follow_the_lines(dubbed):
    _, doc, out = dubbed
    lines = [line for line in doc.languages["es"].lines if line.fit]
    for suffix in ("srt", "vtt"):
        subs = pysubs2.load(str(out / f"talk.es.{suffix}"))
        starts = [e.start for e in subs]
        assert starts == [round(line.fit.start * 1000) for line in lines]
    source = pysubs2.load(str(out / "talk.en.srt"))
    assert [e.start for e in source] == [round(s.start * 1000) for s in doc.segments]


def test_transcript_records_words_speakers_and_fit(dubbed):
    _, doc, out = dubbed
    raw = json.loads((out / "talk.transcript.json").read_text())
    assert raw["segments"][0]["words"][0]["text"].strip()
    line = doc.languages["es"].lines[0]
    assert line.fit is not None and 1.0 <= line.fit.speed <= 1.6
    assert doc.translations["es"][0].source_text == doc.segments[0].text


def test_redub_one_line_rebuilds_only_what_changed(dubbed, artifact_dir, tmp_path):
    import shutil

    from pipeline.redub import redub

    _, doc, out = dubbed
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    target = doc.languages["es"].lines[2]
    result = redub(copy / "talk.transcript.json", language="es", edits={target.segment_id: "Hola a todos."},
                   artifact_dir=artifact_dir)  # fmt: skip
    assert result.resynthesized == 1  # every other line came from the cache
    assert result.seconds < 30
    after = TranscriptDocument.model_validate_json((copy / "talk.transcript.json").read_text())
    changed = next(line for line in after.languages["es"].lines if line.segment_id == target.segment_id)
    assert changed.text == "Hola a todos." and changed.audio_key != target.audio_key
    assert changed.synth_duration < target.synth_duration
    others = [(a.audio_key, a.fit) for a in after.languages["es"].lines if a.segment_id != target.segment_id]
    assert others == [(b.audio_key, b.fit) for b in doc.languages["es"].lines if b.segment_id != target.segment_id]
    subs = pysubs2.load(str(copy / "talk.es.srt"))
    assert any("Hola a todos." in e.plaintext for e in subs)
    assert probe_media(copy / "talk.es.mp4").duration == pytest.approx(
        probe_media(out / "talk.es.mp4").duration, abs=0.05
    )
    assert not list(copy.glob(".octavia-partial-*"))


def test_redub_after_the_cache_was_pruned_speaks_every_line_again(dubbed, artifact_dir, tmp_path):
    """`octavia cache prune` only costs time: a redub from an emptied cache recomputes what it needs."""
    import shutil

    from pipeline.artifacts import ArtifactPruner, ArtifactStore
    from pipeline.redub import redub

    _, doc, out = dubbed
    copy, cache = tmp_path / "copy", tmp_path / "artifacts"
    shutil.copytree(out, copy)
    shutil.copytree(artifact_dir, cache)
    pruned = ArtifactPruner(ArtifactStore(cache), grace=0).prune(max_bytes=0)
    assert pruned.removed_files > 0 and pruned.kept_files == 0
    lines = doc.languages["es"].lines
    result = redub(copy / "talk.transcript.json", language="es", edits={lines[2].segment_id: "Hola a todos."},
                   artifact_dir=cache)  # fmt: skip
    assert result.resynthesized == len(lines)
    after = TranscriptDocument.model_validate_json((copy / "talk.transcript.json").read_text()).languages["es"]
    assert [line.audio_key for line in after.lines if line.segment_id != lines[2].segment_id] == [
        line.audio_key for line in lines if line.segment_id != lines[2].segment_id
    ]  # the same lines, spoken again under the same keys
    assert probe_media(copy / "talk.es.mp4").duration == pytest.approx(after.plan.duration, abs=0.05)


def test_redub_ends_by_pruning_the_store_to_the_cap_as_a_dub_does(dubbed, artifact_dir, tmp_path, monkeypatch):
    import os
    import shutil
    import time

    import numpy as np

    from pipeline.artifacts import MAX_SIZE_ENV, ArtifactStore
    from pipeline.redub import redub

    _, doc, out = dubbed
    copy, cache = tmp_path / "copy", tmp_path / "artifacts"
    shutil.copytree(out, copy)
    shutil.copytree(artifact_dir, cache)  # copy2: the files keep this session's times, within the grace day
    stale = cache / "lines" / "ff" / "ff01.npy"
    ArtifactStore(cache).put_array("lines", "ff01", np.zeros(1000))
    month_ago = time.time() - 30 * 86_400
    os.utime(stale, (month_ago, month_ago))
    monkeypatch.setenv(MAX_SIZE_ENV, "1")
    lines = doc.languages["es"].lines
    result = redub(copy / "talk.transcript.json", language="es", edits={lines[0].segment_id: "Hola."},
                   artifact_dir=cache)  # fmt: skip
    assert result.resynthesized == 1
    assert not stale.exists()  # what no run used for a month went
    after = TranscriptDocument.model_validate_json((copy / "talk.transcript.json").read_text()).languages["es"]
    assert all((cache / "lines" / line.audio_key[:2] / f"{line.audio_key}.wav").exists() for line in after.lines)


def test_redub_that_slows_the_video_retimes_the_copied_picture(dubbed, conversation, artifact_dir, tmp_path):
    import shutil

    from pipeline.redub import redub

    _, doc, out = dubbed
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    lines = doc.languages["es"].lines
    too_long = ("Esta frase es mucho más larga que la original y no cabe en su sitio, así que el vídeo tendrá que ir "
                "más despacio mientras suena.")  # fmt: skip
    redub(copy / "talk.transcript.json", language="es", edits={lines[1].segment_id: too_long},
          artifact_dir=artifact_dir)  # fmt: skip
    slowed = TranscriptDocument.model_validate_json((copy / "talk.transcript.json").read_text()).languages["es"]
    assert slowed.plan.has_slowdown
    # the input's own packets, shown longer where the plan slows the video
    assert video_md5(copy / "talk.es.mp4") == video_md5(conversation.path)
    start = probe_media(conversation.path).start_time
    expected = [slowed.plan.to_output_time(t - start) for t in frame_times(conversation.path)]
    assert frame_times(copy / "talk.es.mp4") == pytest.approx(expected, abs=2e-4)
    assert probe_media(copy / "talk.es.mp4").duration == pytest.approx(slowed.plan.duration, abs=0.05)

    redub(copy / "talk.transcript.json", language="es", edits={lines[3].segment_id: "Hola."},
          artifact_dir=artifact_dir)  # fmt: skip
    again = TranscriptDocument.model_validate_json((copy / "talk.transcript.json").read_text()).languages["es"]
    assert again.plan.slowdowns == slowed.plan.slowdowns
    assert video_md5(copy / "talk.es.mp4") == video_md5(conversation.path)
    assert probe_media(copy / "talk.es.mp4").duration == pytest.approx(again.plan.duration, abs=0.05)
    assert next(line for line in again.lines if line.segment_id == lines[3].segment_id).text == "Hola."

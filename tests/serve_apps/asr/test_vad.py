from __future__ import annotations

import pytest

from serve_apps.asr.vad import SileroVad
from tests.factories import concat, espeak, tone


@pytest.fixture(scope="module")
def vad(model_store):
    return SileroVad(model_store.resolve("silero-vad-v6"))


def test_finds_speech_between_silences(vad, tmp_path):
    a = espeak("This is the first sentence.", tmp_path / "a.wav").resample(16_000)
    b = espeak("And here comes the second one.", tmp_path / "b.wav").resample(16_000)
    gap = a.silence(2.0, 16_000)
    spans = vad.speech_spans(concat(gap, a, gap, b, gap))
    assert len(spans) == 2
    assert spans[0].start == pytest.approx(2.0, abs=0.25)
    assert spans[0].end == pytest.approx(2.0 + a.duration, abs=0.35)
    second_start = 2.0 + a.duration + 2.0
    assert spans[1].start == pytest.approx(second_start, abs=0.25)


def test_tone_and_silence_are_not_speech(vad):
    assert vad.speech_spans(tone(3.0, 440.0)) == []
    assert vad.speech_spans(tone(2.0, 440.0, amplitude=0.0)) == []

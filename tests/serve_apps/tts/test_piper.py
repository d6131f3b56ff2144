from __future__ import annotations

import numpy as np
import pytest

from octavia.errors import UnsupportedLanguageError
from serve_apps.tts.piper import KNOWN_VOICES, PiperEngine
from serve_apps.tts.voices import MEASURE_TEXT, measure_pitch
from tests.serve_apps.tts.helpers import word_error_rate

VOICE = "en_US-joe-medium"


@pytest.fixture(scope="module")
def piper(model_store) -> PiperEngine:
    return PiperEngine(model_store.resolve("piper-en_US-joe-medium"))


def test_voice_is_joe_speaking_english(piper):
    (voice,) = piper.voices("en")
    assert (voice.id, voice.engine, voice.languages, voice.gender) == (VOICE, "piper", ("en",), "male")
    assert piper.languages() == ("en",)


def test_english_round_trip_through_whisper_at_the_recorded_pitch(piper, whisper):
    clip = piper.synthesize(MEASURE_TEXT, "en-US", VOICE)
    assert clip.samples.dtype == np.float32 and clip.samples.ndim == 1
    assert clip.sample_rate == 22_050
    assert 3.0 < clip.duration < 9.0
    result = whisper.transcribe(clip)
    assert result.language == "en"
    assert word_error_rate(MEASURE_TEXT, result.text) <= 0.2, result.text
    # Piper samples its noise afresh each time, so the pitch wanders around the recorded value (78.7-91.5 Hz over
    # 30 syntheses, once 95.2 Hz in CI): the voice's pitch is the median over three syntheses.
    clips = [clip, piper.synthesize(MEASURE_TEXT, "en-US", VOICE), piper.synthesize(MEASURE_TEXT, "en-US", VOICE)]
    pitches = [measure_pitch(c).median_hz for c in clips]
    assert float(np.median(pitches)) == pytest.approx(KNOWN_VOICES[VOICE][1], rel=0.12)


def test_faster_speed_gives_shorter_audio(piper):
    normal = piper.synthesize("Good morning to all of you.", "en", VOICE)
    fast = piper.synthesize("Good morning to all of you.", "en", VOICE, speed=1.6)
    assert fast.duration < 0.8 * normal.duration


def test_bad_arguments_name_what_exists(piper):
    with pytest.raises(UnsupportedLanguageError, match=r"'es'.*speaks: en"):
        piper.synthesize("Hola", "es", VOICE)
    with pytest.raises(ValueError, match=VOICE):
        piper.synthesize("Hello", "en", "en_US-amy-low")
    with pytest.raises(ValueError, match="empty"):
        piper.synthesize("   ", "en", VOICE)

from __future__ import annotations

import numpy as np
import pytest

from octavia.errors import UnsupportedLanguageError
from serve_apps.tts.espeak import VOICES, EspeakEngine
from serve_apps.tts.voices import measure_pitch
from tests.serve_apps.tts.helpers import word_error_rate

ENGLISH = "Please close the window before the rain starts, because the floor is getting wet."


@pytest.fixture(scope="module")
def espeak() -> EspeakEngine:
    return EspeakEngine()


def test_speaks_every_language_espeak_knows_with_male_and_female_voices(espeak):
    assert {"en", "es", "fr", "de", "it", "pt", "ru", "zh", "ja", "ar", "hi", "sw"} <= set(espeak.languages())
    voices = espeak.voices("de")
    assert [v.id for v in voices] == list(VOICES)
    assert {v.gender for v in voices} == {"male", "female"}
    assert all(v.languages == ("de",) and v.engine == "espeak-ng" for v in voices)
    pitches = [v.median_f0_hz for v in voices]
    assert len(set(pitches)) == len(pitches)  # no two voices at the same pitch


def test_english_round_trip_through_whisper(espeak, whisper):
    clip = espeak.synthesize(ENGLISH, "en", "m3")
    assert clip.samples.dtype == np.float32 and clip.samples.ndim == 1
    assert clip.sample_rate == 22_050
    result = whisper.transcribe(clip)
    assert result.language == "en"
    # espeak is robotic: Whisper mishears a word or two.
    assert word_error_rate(ENGLISH, result.text) <= 0.35, result.text


def test_voices_sound_at_their_recorded_pitch(espeak):
    text = "The rainbow is a division of white light."
    low = measure_pitch(espeak.synthesize(text, "es", "m8")).median_hz
    high = measure_pitch(espeak.synthesize(text, "es", "f5-p70")).median_hz
    assert low == pytest.approx(VOICES["m8"][3], rel=0.15)
    assert high == pytest.approx(VOICES["f5-p70"][3], rel=0.15)


def test_speed_and_text_that_looks_like_an_option(espeak):
    normal = espeak.synthesize("-v de this is not an option", "en", "f1")
    fast = espeak.synthesize("-v de this is not an option", "en", "f1", speed=2.0)
    assert fast.duration < 0.7 * normal.duration


def test_bad_arguments_name_what_exists(espeak):
    with pytest.raises(UnsupportedLanguageError, match=r"'tlh'.*\ben\b.*\bes\b"):
        espeak.synthesize("Qapla'", "tlh", "m3")
    with pytest.raises(UnsupportedLanguageError):
        espeak.voices("xx")
    with pytest.raises(ValueError, match="m8, m3, m3-p70"):
        espeak.synthesize("Hello", "en", "klatt")
    with pytest.raises(ValueError, match="empty"):
        espeak.synthesize("", "en", "m3")

from __future__ import annotations

import numpy as np
import pytest

from octavia.errors import UnsupportedLanguageError
from serve_apps.tts.kokoro import MEDIAN_F0_HZ, KokoroEngine
from serve_apps.tts.voices import MEASURE_TEXT, measure_pitch
from tests.serve_apps.tts.helpers import word_error_rate

SPANISH = "Buenos días, me llamo María y vivo en Madrid con mi familia."


@pytest.fixture(scope="module")
def kokoro(model_store) -> KokoroEngine:
    return KokoroEngine(model_store.resolve("kokoro-82m-int8"))


@pytest.fixture(scope="module")
def english(kokoro):
    """MEASURE_TEXT in the male and one female voice: used for the round trip and the pitch checks."""
    return {voice: kokoro.synthesize(MEASURE_TEXT, "en", voice) for voice in ("jm_kumo", "jf_alpha")}


def test_voices_are_the_five_of_the_model_with_gender_and_pitch(kokoro):
    voices = {v.id: v for v in kokoro.voices("es")}
    assert set(voices) == {"jf_alpha", "jf_gongitsune", "jf_nezumi", "jf_tebukuro", "jm_kumo"}
    assert voices["jm_kumo"].gender == "male"
    assert {v.gender for k, v in voices.items() if k != "jm_kumo"} == {"female"}
    assert all(v.engine == "kokoro" and v.median_f0_hz for v in voices.values())
    assert set(voices["jf_alpha"].languages) == {"en", "es", "fr", "it", "pt"}


def test_english_round_trip_through_whisper(english, whisper):
    # jm_kumo: Whisper hears jf_alpha's (strongest) Japanese accent and may detect Japanese on this sentence.
    clip = english["jm_kumo"]
    assert clip.samples.dtype == np.float32 and clip.samples.ndim == 1
    assert clip.sample_rate == 24_000
    assert 3.0 < clip.duration < 9.0
    result = whisper.transcribe(clip)
    assert result.language == "en"
    assert word_error_rate(MEASURE_TEXT, result.text) <= 0.2, result.text


def test_spanish_round_trip_through_whisper(kokoro, whisper):
    clip = kokoro.synthesize(SPANISH, "es", "jf_nezumi")
    result = whisper.transcribe(clip)
    assert result.language == "es"
    assert word_error_rate(SPANISH, result.text) <= 0.2, result.text


def test_male_voice_is_clearly_lower_than_female_and_matches_its_recorded_pitch(english):
    male = measure_pitch(english["jm_kumo"]).median_hz
    female = measure_pitch(english["jf_alpha"]).median_hz
    assert male is not None and female is not None
    assert female > 1.8 * male  # about an octave apart
    assert male == pytest.approx(MEDIAN_F0_HZ["jm_kumo"], rel=0.1)
    assert female == pytest.approx(MEDIAN_F0_HZ["jf_alpha"], rel=0.1)


def test_faster_speed_gives_shorter_audio(kokoro):
    normal = kokoro.synthesize("Good morning.", "en", "jf_nezumi")
    fast = kokoro.synthesize("Good morning.", "en", "jf_nezumi", speed=1.6)
    assert fast.duration < 0.8 * normal.duration


def test_bad_arguments_name_what_exists(kokoro):
    with pytest.raises(UnsupportedLanguageError, match=r"de.*en, es, fr, it, pt"):
        kokoro.synthesize("Hallo", "de", "jm_kumo")
    with pytest.raises(UnsupportedLanguageError):
        kokoro.voices("de")
    with pytest.raises(ValueError, match="jf_alpha, jf_gongitsune"):
        kokoro.synthesize("Hello", "en", "af_heart")
    with pytest.raises(ValueError, match="empty"):
        kokoro.synthesize(" \n ", "en", "jm_kumo")
    with pytest.raises(ValueError, match="speed"):
        kokoro.synthesize("Hello", "en", "jm_kumo", speed=3.0)


def test_two_threads_on_one_engine_speak_as_one_at_a_time(model_store):
    # A replica with engine_workers=2 runs two lines at once on one ONNX session (espeak behind kokoro-onnx's lock).
    from concurrent.futures import ThreadPoolExecutor

    engine = KokoroEngine(model_store.resolve("kokoro-82m-int8"), cpu_threads=1)
    lines = [("Hola, ¿qué tal?", "es", "jf_nezumi"), ("Good morning to you all.", "en", "jm_kumo")]
    alone = [engine.synthesize(*line) for line in lines]
    with ThreadPoolExecutor(2) as pool:
        together = list(pool.map(lambda line: engine.synthesize(*line), lines * 2))
    for clip, expected in zip(together, alone * 2, strict=True):
        assert clip.sample_rate == expected.sample_rate
        np.testing.assert_allclose(clip.samples, expected.samples, atol=1e-5)

from __future__ import annotations

import re

import pytest

from octavia.errors import UnsupportedLanguageError
from serve_apps.asr.engine import FasterWhisperEngine
from tests.factories import concat, espeak


def words_of(text: str) -> list[str]:
    return re.findall(r"[a-záéíóúñü']+", text.lower())


@pytest.fixture(scope="module")
def tiny_en(model_store):
    return FasterWhisperEngine(model_store.resolve("whisper-tiny.en"), beam_size=1)


@pytest.fixture(scope="module")
def base(model_store):
    return FasterWhisperEngine(model_store.resolve("whisper-base"), beam_size=1)


def test_english_round_trip_with_word_timestamps(tiny_en, tmp_path):
    clip = espeak("Please open the window and close the door.", tmp_path / "en.wav")
    result = tiny_en.transcribe(clip, "en")
    assert result.language == "en"
    assert words_of(result.text) == ["please", "open", "the", "window", "and", "close", "the", "door"]
    assert result.duration == pytest.approx(clip.duration, abs=0.01)
    words = [w for s in result.segments for w in s.words]
    assert [w.start for w in words] == sorted(w.start for w in words)
    for seg in result.segments:
        assert all(seg.start - 0.05 <= w.start <= w.end <= seg.end + 0.05 for w in seg.words)
    assert words[-1].end <= clip.duration + 0.05


def test_offset_moves_every_time(tiny_en, tmp_path):
    clip = espeak("Good morning.", tmp_path / "gm.wav")
    plain = tiny_en.transcribe(clip, "en")
    shifted = tiny_en.transcribe(clip, "en", offset=30.0)
    assert shifted.segments[0].start == pytest.approx(plain.segments[0].start + 30.0, abs=1e-3)
    assert shifted.segments[0].words[0].end == pytest.approx(plain.segments[0].words[0].end + 30.0, abs=1e-3)


def test_detects_spanish_and_transcribes_it(base, tmp_path):
    clip = espeak("Buenos días, me llamo Carlos.", tmp_path / "es.wav", voice="es")
    result = base.transcribe(clip)
    assert result.language == "es"
    assert {"buenos", "días", "llamo", "carlos"} <= set(words_of(result.text))


def test_speech_after_silence_keeps_its_position(tiny_en, tmp_path):
    speech = espeak("My name is Peter.", tmp_path / "h.wav")
    silence = speech.silence(3.0, speech.sample_rate)
    result = tiny_en.transcribe(concat(silence, speech))
    first = result.segments[0].words[0]
    # Whisper's word times are good to a few hundred ms.
    assert 2.6 <= first.start <= 3.4


@pytest.mark.parametrize("peak_dbfs", [-50.0, -60.0])
def test_very_quiet_speech_is_heard_as_at_full_level(base, tmp_path, peak_dbfs):
    """Unraised, whisper-base heard "and the window..." at -50 dBFS and nothing at all at -60 dBFS."""
    import numpy as np

    from octavia.audio import AudioClip

    clip = espeak("Please open the window and close the door. My name is Peter.", tmp_path / "q.wav")
    quiet = AudioClip((clip.samples / np.abs(clip.samples).max() * 10 ** (peak_dbfs / 20)).astype(np.float32),
                      clip.sample_rate)  # fmt: skip
    loud = base.transcribe(clip, "en")
    heard = base.transcribe(quiet, "en")
    assert words_of(heard.text) == words_of(loud.text)
    assert "window" in words_of(heard.text)


def test_english_only_model_refuses_other_languages(tiny_en, tmp_path):
    clip = espeak("Hola.", tmp_path / "x.wav", voice="es")
    with pytest.raises(UnsupportedLanguageError, match="en"):
        tiny_en.transcribe(clip, "es")


def test_two_threads_on_one_model_transcribe_as_one_at_a_time(model_store, tmp_path):
    # A replica with engine_workers=2 runs two calls at once on one model (CTranslate2's num_workers).
    from concurrent.futures import ThreadPoolExecutor

    engine = FasterWhisperEngine(model_store.resolve("whisper-tiny.en"), beam_size=1, cpu_threads=1, num_workers=2)
    clips = [
        espeak("Please open the window and close the door.", tmp_path / "a.wav"),
        espeak("My name is Peter and I live in London.", tmp_path / "b.wav"),
    ]
    alone = [engine.transcribe(clip, "en") for clip in clips]
    with ThreadPoolExecutor(2) as pool:
        together = list(pool.map(lambda clip: engine.transcribe(clip, "en"), clips * 2))
    assert together == alone * 2


def test_a_given_language_is_checked_against_what_the_model_hears_on_request(base, tiny_en, tmp_path):
    english = espeak("Please open the window and close the door.", tmp_path / "en.wav")
    forced = base.transcribe(english, "es", check_language=True)
    assert forced.language == "es"  # transcribed as told...
    assert forced.detected_language == "en" and forced.detected_language_probability > 0.8  # ...but heard as English
    assert base.transcribe(english, "en", check_language=True).detected_language == "en"
    assert base.transcribe(english, "es").detected_language is None  # not asked: no extra pass
    assert base.transcribe(english, check_language=True).detected_language is None  # detected anyway
    assert tiny_en.transcribe(english, "en", check_language=True).detected_language is None  # English-only model

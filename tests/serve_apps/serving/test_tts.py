"""The TTS app served for real with the offline engines: Kokoro, Piper (multiplexed per voice) and espeak-ng."""

from __future__ import annotations

import io

import pytest
import requests
import soundfile

from octavia.audio import AudioClip
from octavia.errors import UnsupportedLanguageError
from serve_apps.tts.app import build_app
from tests.serve_apps.serving.conftest import TEST_DEPLOYMENT

PIPER_VOICE = "piper:en_US-joe-medium"
LINE = "The weather is lovely today, so we are going for a walk."


@pytest.fixture(scope="module")
def tts(deploy):  # type: ignore[no-untyped-def]
    args = {"profile": "offline", "batch_wait_timeout_s": 0.5, "deployment": TEST_DEPLOYMENT}
    return deploy(build_app(args), "tts")


def test_voices_of_every_engine_best_first(tts) -> None:
    voices = tts.voices.remote().result()
    engines = list(dict.fromkeys(v.engine for v in voices))
    assert engines == ["kokoro", "piper", "espeak-ng"]
    assert f"{voices[0].engine}:{voices[0].id}".startswith("kokoro:")
    spanish = tts.voices.remote("es").result()
    assert {v.engine for v in spanish} == {"kokoro", "espeak-ng"}  # the one Piper voice speaks English only
    assert all("es" in v.languages for v in spanish)


@pytest.mark.parametrize(
    ("voice", "sample_rate"), [("kokoro:jm_kumo", 24_000), ("espeak-ng:m3", 22_050), ("f3", 22_050)]
)
def test_each_engine_speaks_through_the_handle(tts, voice: str, sample_rate: int) -> None:
    clip = tts.synthesize.remote(LINE, "en", voice).result()
    assert isinstance(clip, AudioClip) and clip.sample_rate == sample_rate
    assert 2.0 < clip.duration < 8.0
    assert float(abs(clip.samples).max()) > 0.05


def test_speed_reaches_the_engine(tts) -> None:
    normal = tts.synthesize.remote(LINE, "en", "espeak-ng:m3").result()
    fast = tts.synthesize.remote(LINE, "en", "espeak-ng:m3", speed=2.0).result()
    assert fast.duration < 0.7 * normal.duration


def test_piper_voices_are_multiplexed_models(tts) -> None:
    routed = tts.options(multiplexed_model_id=PIPER_VOICE)
    first = routed.synthesize.remote(LINE, "en", PIPER_VOICE).result()
    again = routed.synthesize.remote("Good night.", "en", PIPER_VOICE).result()
    assert first.sample_rate == 22_050 and first.duration > again.duration > 0.3
    stats = tts.stats.remote().result()
    assert stats.model_loads == {PIPER_VOICE: 1}  # loaded once on demand, then reused
    assert stats.loaded_models == (PIPER_VOICE,)


def test_concurrent_lines_are_batched(tts) -> None:
    lines = [f"This is line number {n}." for n in range(6)]
    responses = [tts.synthesize.remote(line, "en", "espeak-ng:f1") for line in lines]
    clips = [r.result() for r in responses]
    assert all(c.duration > 0.5 for c in clips)
    assert tts.stats.remote().result().max_batch_size["synthesize"] > 1


def test_bad_requests_fail_alone_and_typed(tts) -> None:
    good = tts.synthesize.remote(LINE, "en", "espeak-ng:m3")
    unknown_voice = tts.synthesize.remote(LINE, "en", "nobody")
    wrong_language = tts.synthesize.remote(LINE, "ja", "kokoro:jm_kumo")
    assert good.result().duration > 2.0
    with pytest.raises(ValueError, match="no voice 'nobody'"):
        unknown_voice.result()
    with pytest.raises(UnsupportedLanguageError):
        wrong_language.result()


def test_http(tts, cluster) -> None:
    body = {"text": LINE, "language": "en", "voice": "espeak-ng:f3"}
    response = requests.post(f"{cluster.url}/tts", json=body, timeout=60)
    assert response.status_code == 200 and response.headers["content-type"] == "audio/wav"
    samples, rate = soundfile.read(io.BytesIO(response.content))
    assert rate == 22_050 and 2.0 < len(samples) / rate < 8.0

    voices = requests.get(f"{cluster.url}/tts?language=es", timeout=10).json()
    assert voices[0]["name"].startswith("kokoro:") and all("es" in v["languages"] for v in voices)

    for bad, code in [
        ({**body, "voice": "nobody"}, "bad_input"),
        ({**body, "text": "   "}, "bad_input"),
        ({**body, "speed": 9}, "bad_input"),
        ({**body, "language": "ja", "voice": "kokoro:jm_kumo"}, "unsupported_language"),
    ]:
        response = requests.post(f"{cluster.url}/tts", json=bad, timeout=60)
        assert response.status_code == 422, bad
        assert response.json()["error"]["code"] == code


def test_health(tts) -> None:
    tts.check_health.remote().result()

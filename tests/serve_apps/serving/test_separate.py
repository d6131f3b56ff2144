"""The separation app served for real: passthrough ("none") and Spleeter 2 stems."""

from __future__ import annotations

import io

import numpy as np
import pytest
import requests
import soundfile

from octavia.audio import AudioClip
from serve_apps.common.http import encode_wav
from serve_apps.separate.app import build_app
from serve_apps.separate.engine import Stems
from tests.factories import espeak
from tests.serve_apps.serving.conftest import TEST_DEPLOYMENT

SR = 44_100


def correlation(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-12))


@pytest.fixture(scope="module")
def sources(tmp_path_factory) -> tuple[np.ndarray, np.ndarray]:  # type: ignore[no-untyped-def]
    speech = espeak("The quick brown fox jumps over the lazy dog.", tmp_path_factory.mktemp("sep") / "s.wav")
    voice = speech.resample(SR).samples[: 2 * SR]
    t = np.arange(voice.size) / SR
    chords = sum(0.05 / h * np.sin(2 * np.pi * f * h * t) for f in (130.81, 164.81, 196.0) for h in range(1, 5))
    return voice, chords.astype(np.float32)


@pytest.fixture(scope="module")
def mix(sources) -> AudioClip:  # type: ignore[no-untyped-def]
    voice, music = sources
    return AudioClip(np.stack([0.8 * voice + music, 0.6 * voice + music]).astype(np.float32), SR)


@pytest.fixture(scope="module")
def spleeter(deploy):  # type: ignore[no-untyped-def]
    return deploy(build_app({"profile": "offline", "deployment": TEST_DEPLOYMENT}), "separate")


def test_passthrough_gives_the_mix_back_as_both_stems(deploy, mix) -> None:
    handle = deploy(build_app({"model": "none", "deployment": TEST_DEPLOYMENT}), "separate-none")
    stems = handle.separate.remote(mix).result()
    assert isinstance(stems, Stems)
    assert np.array_equal(stems.vocals.samples, mix.samples) and np.array_equal(stems.background.samples, mix.samples)


def test_spleeter_splits_voice_from_music_through_the_handle(spleeter, mix, sources) -> None:
    voice, music = sources
    stems = spleeter.separate.remote(mix).result()
    for stem in (stems.vocals, stems.background):
        assert stem.samples.shape == mix.samples.shape and stem.sample_rate == SR
    left_vocals, left_background = stems.vocals.samples[0], stems.background.samples[0]
    assert correlation(left_vocals, voice) > correlation(left_background, voice)
    assert correlation(left_background, music) > correlation(left_vocals, music)
    assert spleeter.stats.remote().result().audio_seconds["separate"] == pytest.approx(mix.duration, abs=0.01)
    spleeter.check_health.remote().result()


def test_http_returns_the_asked_stem_as_wav(spleeter, cluster, mix) -> None:
    response = requests.post(f"{cluster.url}/separate?stem=vocals", data=encode_wav(mix), timeout=120)
    assert response.status_code == 200 and response.headers["content-type"] == "audio/wav"
    samples, rate = soundfile.read(io.BytesIO(response.content), always_2d=True)
    assert rate == SR and samples.shape == (mix.num_frames, 2)

    response = requests.post(f"{cluster.url}/separate?stem=drums", data=encode_wav(mix), timeout=30)
    assert response.status_code == 422
    assert response.json()["error"]["details"]["stems"] == ["background", "vocals"]
    assert requests.get(f"{cluster.url}/separate", timeout=10).json()["engine"] == "spleeter-2stems"

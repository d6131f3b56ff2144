"""The ASR app served for real: whisper-tiny.en through a DeploymentHandle and over HTTP."""

from __future__ import annotations

import re

import pytest
import requests

from octavia.errors import ModelError, UnsupportedLanguageError
from octavia.records import Transcription
from serve_apps.asr.app import build_app
from serve_apps.common.http import encode_wav
from tests.factories import espeak, ffmpeg
from tests.serve_apps.serving.conftest import TEST_DEPLOYMENT

SENTENCE = "Please open the window and close the door."
WORDS = ["please", "open", "the", "window", "and", "close", "the", "door"]


def words_of(text: str) -> list[str]:
    return re.findall(r"[a-z']+", text.lower())


@pytest.fixture(scope="module")
def speech(tmp_path_factory):  # type: ignore[no-untyped-def]
    return espeak(SENTENCE, tmp_path_factory.mktemp("asr") / "speech.wav")


@pytest.fixture(scope="module")
def asr(deploy):  # type: ignore[no-untyped-def]
    args = {"model": "whisper-tiny.en", "beam_size": 1, "cpu_threads": 1, "deployment": TEST_DEPLOYMENT}
    return deploy(build_app(args), "asr")


def test_transcribes_through_the_handle_with_offset(asr, speech) -> None:
    result = asr.transcribe.remote(speech, "en", offset=12.5).result()
    assert isinstance(result, Transcription)
    assert words_of(result.text) == WORDS
    assert result.duration == pytest.approx(speech.duration, abs=0.01)
    assert 12.5 <= result.segments[0].start < 12.5 + speech.duration
    assert asr.languages.remote().result() == ("en",)
    checked = asr.transcribe.remote(speech, "en", offset=0.0, check_language=True).result()
    assert words_of(checked.text) == WORDS and checked.detected_language is None  # English-only: nothing to tell


def test_engine_errors_reach_the_caller_typed(asr, speech) -> None:
    with pytest.raises(UnsupportedLanguageError) as err:
        asr.transcribe.remote(speech, "es").result()
    assert err.value.details == {"language": "es"}


def test_http_takes_any_audio_file_and_returns_the_transcription(asr, cluster, speech, tmp_path) -> None:
    response = requests.post(f"{cluster.url}/asr?language=en&check_language=true", data=encode_wav(speech), timeout=60)
    assert response.status_code == 200
    checked = Transcription.model_validate(response.json())
    assert words_of(checked.text) == WORDS and checked.detected_language is None  # English-only: nothing to tell

    speech.write(str(tmp_path / "speech.wav"))
    ffmpeg("-i", str(tmp_path / "speech.wav"), "-c:a", "aac", str(tmp_path / "speech.m4a"))
    response = requests.post(f"{cluster.url}/asr", data=(tmp_path / "speech.m4a").read_bytes(), timeout=60)
    assert response.status_code == 200
    assert words_of(" ".join(s["text"] for s in response.json()["segments"])) == WORDS

    assert requests.get(f"{cluster.url}/asr", timeout=10).json() == {"languages": ["en"]}


@pytest.mark.parametrize(
    ("query", "body", "status", "code"),
    [
        ("", b"", 422, "empty_media"),
        ("", b"not audio at all" * 20, 422, "not_media"),
        ("?language=es", None, 422, "unsupported_language"),
        ("?offset=soon", None, 422, "bad_input"),
        ("?language=en&check_language=maybe", None, 422, "bad_input"),
    ],
)
def test_http_bad_input_is_a_4xx_with_the_error_shape(asr, cluster, speech, query, body, status, code) -> None:
    data = encode_wav(speech) if body is None else body
    response = requests.post(f"{cluster.url}/asr{query}", data=data, timeout=60)
    assert response.status_code == status
    error = response.json()["error"]
    assert error["code"] == code and error["message"] and isinstance(error["details"], dict)


def test_health_and_stats(asr) -> None:
    asr.check_health.remote().result()
    stats = asr.stats.remote().result()
    assert stats.requests["transcribe"] >= 2
    assert stats.audio_seconds["transcribe"] > 2.0
    assert stats.errors.get("unsupported_language", 0) >= 1


def test_a_broken_engine_fails_its_health_check(deploy, cluster, speech) -> None:
    args = {"engine": "tests.serve_apps.serving.fakes:BrokenAsrEngine", "deployment": TEST_DEPLOYMENT}
    broken = deploy(build_app(args), "asr-broken")
    broken.check_health.remote().result()  # healthy until calls fail
    for _ in range(3):
        with pytest.raises(RuntimeError, match="CUDA error"):
            broken.transcribe.remote(speech).result()
    with pytest.raises(ModelError, match="3 calls in a row"):
        broken.check_health.remote().result()
    response = requests.post(f"{cluster.url}/asr-broken", data=encode_wav(speech), timeout=30)
    assert response.status_code == 500
    assert response.json()["error"]["code"] == "internal_error"

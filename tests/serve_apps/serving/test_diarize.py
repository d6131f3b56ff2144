"""The diarization app served for real with the offline engine (pyannote segmentation + CAM++)."""

from __future__ import annotations

import numpy as np
import pytest
import requests

from octavia.errors import ModelNotAvailableError
from octavia.records import Diarization
from serve_apps.common.http import encode_wav
from serve_apps.diarize.app import build_app
from tests.factories import concat, espeak
from tests.serve_apps.serving.conftest import TEST_DEPLOYMENT

LOW = {"voice": "en-us+m3", "pitch": 20}
HIGH = {"voice": "en-us+f4", "pitch": 85}


@pytest.fixture(scope="module")
def conversation(tmp_path_factory):  # type: ignore[no-untyped-def]
    """Low voice, high voice, low voice, high voice: two speakers taking turns, ~10 s at 16 kHz."""
    folder = tmp_path_factory.mktemp("diarize")
    lines = [
        ("The quick brown fox jumps over the lazy dog near the river.", LOW),
        ("She sells sea shells by the sea shore every summer.", HIGH),
        ("I would like a cup of coffee and a slice of cake.", LOW),
        ("Tomorrow we are going to the museum with my cousins.", HIGH),
    ]
    clips = [espeak(text, folder / f"{i}.wav", **voice).resample(16_000) for i, (text, voice) in enumerate(lines)]
    return concat(*clips, gap=0.7)


@pytest.fixture(scope="module")
def diarizer(deploy):  # type: ignore[no-untyped-def]
    args = {"profile": "offline", "batch_wait_timeout_s": 0.5, "deployment": TEST_DEPLOYMENT}
    return deploy(build_app(args), "diarize")


def test_chunks_are_embedded_in_one_batch_on_the_input_timeline(diarizer, conversation) -> None:
    half = conversation.duration / 2
    first = diarizer.embed_speech.remote(conversation.slice(0, half), 0.0)
    second = diarizer.embed_speech.remote(conversation.slice(half, conversation.duration), half)
    parts = [first.result(), second.result()]
    for part, (start, end) in zip(parts, [(0, half), (half, conversation.duration)], strict=True):
        assert len(part.windows) >= 3 and part.vectors.shape == (len(part.windows), 192)
        assert np.allclose(np.linalg.norm(part.vectors, axis=1), 1.0, atol=1e-4)
        assert all(start - 0.01 <= w.start < w.end <= end + 0.01 for w in part.windows)
    assert diarizer.stats.remote().result().max_batch_size["embed_speech"] == 2


def test_diarize_labels_two_speakers(diarizer, conversation) -> None:
    result = diarizer.diarize.remote(conversation, None).result()
    assert isinstance(result, Diarization) and result.speakers == ("SPEAKER_00", "SPEAKER_01")
    first, last = result.turns[0], result.turns[-1]
    assert first.speaker == "SPEAKER_00" and last.speaker == "SPEAKER_01"


def test_http_returns_windows_vectors_and_turns(diarizer, cluster, conversation) -> None:
    response = requests.post(f"{cluster.url}/diarize?num_speakers=2", data=encode_wav(conversation), timeout=120)
    assert response.status_code == 200
    body = response.json()
    assert body["speakers"] == ["SPEAKER_00", "SPEAKER_01"]
    assert len(body["vectors"]) == len(body["windows"]) >= 6 and len(body["vectors"][0]) == 192
    assert [t["speaker"] for t in body["turns"]][:2] == ["SPEAKER_00", "SPEAKER_01"]

    response = requests.post(f"{cluster.url}/diarize?num_speakers=0", data=encode_wav(conversation), timeout=30)
    assert response.status_code == 422 and response.json()["error"]["code"] == "bad_input"


def test_an_engine_without_chunk_embeddings_says_what_to_call(deploy, conversation) -> None:
    args = {"engine": "tests.serve_apps.serving.fakes:WholeInputDiarizer", "deployment": TEST_DEPLOYMENT}
    handle = deploy(build_app(args), "diarize-whole")
    with pytest.raises(ModelNotAvailableError, match="diarize"):
        handle.embed_speech.remote(conversation).result()
    assert handle.diarize.remote(conversation, 1).result().speakers == ("SPEAKER_00",)

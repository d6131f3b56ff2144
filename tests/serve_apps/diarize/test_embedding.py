from __future__ import annotations

import numpy as np
import pytest

from octavia.errors import ModelIntegrityError, ModelNotAvailableError
from octavia.records import TimeSpan
from serve_apps.diarize.embedding import CamPlusPlusEmbedder, ResemblyzerEmbedder, load_speaker_embedder
from tests.factories import concat, espeak
from tests.serve_apps.diarize.conftest import HIGH, LOW

SENTENCES = (
    "The quick brown fox jumps over the lazy dog.",
    "I would like a cup of coffee, please.",
    "Tomorrow we are going to the museum.",
)


class NotWeights:
    """Any class outside torch's allow-list: unpickling it could run code, so loading must refuse."""


@pytest.fixture(scope="module")
def voices(tmp_path_factory):
    """Three sentences by a low male voice followed by the same three by a high female voice, in one clip."""
    folder = tmp_path_factory.mktemp("voices")
    clips = [espeak(t, folder / f"low{i}.wav", **LOW) for i, t in enumerate(SENTENCES)]
    clips += [espeak(t, folder / f"high{i}.wav", **HIGH) for i, t in enumerate(SENTENCES)]
    spans, t = [], 0.0
    for clip in clips:
        spans.append(TimeSpan(start=t, end=t + clip.duration))
        t += clip.duration
    return concat(*clips), spans


@pytest.fixture(scope="module")
def resemblyzer(model_store):
    return ResemblyzerEmbedder(model_store.resolve("resemblyzer-encoder"))


def check_voices_separate(embedder, voices, dimension: int) -> None:
    audio, spans = voices
    vectors = embedder.embed(audio, spans)
    assert vectors.shape == (6, dimension)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    similarity = vectors @ vectors.T
    low, high = [0, 1, 2], [3, 4, 5]
    same = [similarity[i, j] for group in (low, high) for i in group for j in group if i < j]
    different = [similarity[i, j] for i in low for j in high]
    # Every same-voice pair is closer than every cross-voice pair (different sentences throughout).
    assert min(same) > max(different), (same, different)


def test_campplus_puts_the_same_voice_closer_than_a_different_one(campplus, voices):
    assert campplus.dimension == 192
    check_voices_separate(campplus, voices, 192)


def test_resemblyzer_puts_the_same_voice_closer_than_a_different_one(resemblyzer, voices):
    assert resemblyzer.dimension == 256
    check_voices_separate(resemblyzer, voices, 256)


def test_embedding_handles_short_spans_and_other_sample_rates(campplus, voices):
    audio, spans = voices  # espeak's 22.05 kHz: resampled inside
    short = TimeSpan(start=spans[0].start + 0.3, end=spans[0].start + 0.45)  # shorter than the network minimum
    vectors = campplus.embed(audio, [short, spans[0]])
    assert vectors.shape == (2, 192)
    assert np.isfinite(vectors).all()
    assert campplus.embed(audio, []).shape == (0, 192)
    with pytest.raises(ValueError, match="holds no audio"):
        campplus.embed(audio, [TimeSpan(start=audio.duration + 1, end=audio.duration + 2)])


def test_embedding_is_the_same_alone_or_batched(campplus, voices):
    audio, spans = voices
    windows = [TimeSpan(start=s.start, end=s.start + 1.5) for s in spans]  # equal lengths: batched together
    together = campplus.embed(audio, windows)
    alone = np.concatenate([campplus.embed(audio, [w]) for w in windows])
    np.testing.assert_allclose(together, alone, atol=1e-4)


def test_unknown_embedder_lists_the_available_ones(tmp_path):
    with pytest.raises(ModelNotAvailableError, match="campplus-sv-zh-en, resemblyzer-encoder"):
        load_speaker_embedder("ecapa", tmp_path)


def test_missing_or_unsafe_weights_are_refused(tmp_path):
    with pytest.raises(ModelNotAvailableError, match="octavia models fetch campplus-sv-zh-en"):
        CamPlusPlusEmbedder(tmp_path)
    import torch

    torch.save({"x": NotWeights()}, tmp_path / "campplus_cn_en_common.pt")
    with pytest.raises(ModelIntegrityError, match="not a plain campplus-sv-zh-en state dict"):
        CamPlusPlusEmbedder(tmp_path)

"""SpleeterEngine with the real offline 2stems weights on a generated speech + chords mix."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import pytest

from octavia.audio import AudioClip
from octavia.errors import ModelIntegrityError
from serve_apps.separate.engine import Stems
from serve_apps.separate.spleeter import SpleeterEngine, load_numpy_state
from tests.factories import espeak

SR = 44_100


def _correlation(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-12))


def _chords(n: int) -> np.ndarray:
    """Sustained C-major chord tones with harmonics: music-like, nothing like speech."""
    t = np.arange(n) / SR
    out = np.zeros(n)
    for f0 in (130.81, 164.81, 196.0, 261.63):
        for h in range(1, 6):
            out += (0.05 / h) * np.sin(2 * np.pi * f0 * h * t + h)
    return out.astype(np.float32)


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> tuple[np.ndarray, np.ndarray]:
    wav = tmp_path_factory.mktemp("spleeter") / "speech.wav"
    speech = espeak("The quick brown fox jumps over the lazy dog, and then it runs far away.", wav)
    speech_44k = speech.resample(SR).samples[: 3 * SR]
    return speech_44k, _chords(len(speech_44k))


@pytest.fixture(scope="module")
def mix(sources: tuple[np.ndarray, np.ndarray]) -> AudioClip:
    speech, music = sources
    return AudioClip(np.stack([0.8 * speech + music, 0.6 * speech + music]).astype(np.float32), SR)


@pytest.fixture(scope="module")
def engine(model_store) -> SpleeterEngine:
    return SpleeterEngine(store=model_store)


@pytest.fixture(scope="module")
def stems(engine, mix) -> Stems:
    return engine.separate(mix)


def test_vocals_follow_the_speech_and_background_the_music(stems, mix, sources) -> None:
    speech, music = sources

    assert stems.vocals.samples.shape == stems.background.samples.shape == mix.samples.shape
    assert stems.vocals.sample_rate == stems.background.sample_rate == SR
    vocals, background = stems.vocals.samples.mean(axis=0), stems.background.samples.mean(axis=0)
    assert _correlation(vocals, speech) > 0.8 > 0.3 > _correlation(vocals, music)
    assert _correlation(background, music) > 0.8 > 0.3 > _correlation(background, speech)
    # Ratio masks sum to one, so the two stems add back up to the mix.
    np.testing.assert_allclose(stems.vocals.samples + stems.background.samples, mix.samples, atol=1e-3)


def test_mono_16k_comes_back_mono_16k_with_the_same_length(engine, mix, sources) -> None:
    speech, _ = sources
    mono = mix.mono().resample(16_000)
    stems = engine.separate(mono)

    assert stems.vocals.samples.shape == stems.background.samples.shape == mono.samples.shape
    assert stems.vocals.sample_rate == 16_000
    speech_16k = AudioClip(speech, SR).resample(16_000).samples[: mono.num_frames]
    assert _correlation(stems.vocals.samples, speech_16k) > 0.8


def test_long_audio_is_separated_in_crossfaded_chunks(model_store, stems, mix) -> None:
    whole = stems
    chunked = SpleeterEngine(store=model_store, chunk_seconds=2.0, overlap_seconds=0.5).separate(mix)

    assert chunked.vocals.samples.shape == mix.samples.shape
    assert _correlation(chunked.vocals.samples.ravel(), whole.vocals.samples.ravel()) > 0.95
    assert _correlation(chunked.background.samples.ravel(), whole.background.samples.ravel()) > 0.95
    np.testing.assert_allclose(chunked.vocals.samples + chunked.background.samples, mix.samples, atol=1e-3)


class _RunsCommand:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_checkpoints_load_without_full_pickle_and_code_is_refused(model_store, tmp_path, monkeypatch) -> None:
    import torch

    marker = tmp_path / "pwned"
    crafted = tmp_path / "vocals.ckpt"
    torch.save({"down1_conv.1.weight": _RunsCommand(marker)}, crafted)

    def _forbidden(*args, **kwargs):
        raise AssertionError("full pickle must never be used on model files")

    for name in ("load", "loads", "Unpickler"):
        monkeypatch.setattr(pickle, name, _forbidden)

    real = load_numpy_state(model_store.resolve("spleeter-2stems") / "vocals.ckpt")
    assert real["down1_conv.1.weight"].shape == (16, 2, 5, 5)
    with pytest.raises(ModelIntegrityError, match="refusing"):
        load_numpy_state(crafted)
    with pytest.raises(ModelIntegrityError):
        SpleeterEngine(tmp_path)
    assert not marker.exists()


def test_a_very_quiet_mix_is_separated_as_at_full_level(engine, stems, mix, sources) -> None:
    """Spleeter hears level: 50 dB down, the voice leaks into the background unless the input is raised first
    (and the stems lowered back to the input's level)."""
    speech, music = sources
    gain = 10 ** (-50 / 20)
    quiet = engine.separate(mix.scaled(gain))

    vocals, background = quiet.vocals.samples.mean(axis=0), quiet.background.samples.mean(axis=0)
    assert _correlation(vocals, speech) > 0.8 > 0.3 > _correlation(vocals, music)
    assert _correlation(background, music) > 0.8 > 0.3 > _correlation(background, speech)
    # The stems come back at the input's level, as they would have at full level.
    assert _correlation(quiet.vocals.samples.ravel(), stems.vocals.samples.ravel()) > 0.99
    rms = float(np.sqrt(np.mean(quiet.vocals.samples**2)) / np.sqrt(np.mean(stems.vocals.samples**2)))
    assert rms == pytest.approx(gain, rel=0.05)
    np.testing.assert_allclose(quiet.vocals.samples + quiet.background.samples, mix.samples * gain, atol=1e-3 * gain)

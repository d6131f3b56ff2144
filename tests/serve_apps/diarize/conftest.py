"""Shared fixtures for the diarization tests: offline guard, tiny pyannote checkpoints, real models, speech."""

from __future__ import annotations

import socket
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from octavia.audio import AudioClip
from octavia.records import TimeSpan
from tests.factories import concat, espeak

# Two espeak voices far apart (low male vs high female) and one close to the first, for embedding tests.
LOW = {"voice": "en-us+m3", "pitch": 20}
HIGH = {"voice": "en-us+f4", "pitch": 85}


@pytest.fixture(scope="package", autouse=True)
def one_torch_thread():
    """Run torch single-threaded here: on a shared 2-core machine OpenMP's spinning threads make these small
    models 10-30x slower. (Serving gets the same from Ray, which sets OMP_NUM_THREADS to the actor's CPUs.)"""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture
def no_network(monkeypatch):
    """Fail any attempt to open an internet connection (and tell the HF hub client it is offline)."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")

    def refuse(self, address, *args, **kwargs):
        if self.family in (socket.AF_INET, socket.AF_INET6):
            raise OSError(f"network access attempted during an offline test: {address}")
        return original(self, address, *args, **kwargs)

    original = socket.socket.connect
    monkeypatch.setattr(socket.socket, "connect", refuse)


def save_tiny_pyannote_model(model, path: Path) -> Path:
    """Save a randomly initialised pyannote model the way pyannote's training does (a Lightning checkpoint)."""
    import lightning

    trainer = lightning.Trainer(
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.strategy.connect(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    trainer.save_checkpoint(str(path))
    return path


def tiny_pyannet(window: float = 5.0):
    """A PyanNet with segmentation-3.0's output layout (3 speakers, powerset of at most 2) and tiny layers."""
    import torch

    from serve_apps.diarize.pyannote_pipeline import import_pyannote_audio

    import_pyannote_audio()
    from pyannote.audio.core.task import Problem, Resolution, Specifications
    from pyannote.audio.models.segmentation import PyanNet

    torch.manual_seed(0)
    model = PyanNet(
        sincnet={"stride": 10},
        lstm={"hidden_size": 8, "num_layers": 1, "bidirectional": True},
        linear={"hidden_size": 8, "num_layers": 1},
    )
    model.specifications = Specifications(
        problem=Problem.MONO_LABEL_CLASSIFICATION,
        resolution=Resolution.FRAME,
        duration=window,
        classes=["speaker#1", "speaker#2", "speaker#3"],
        powerset_max_classes=2,
        permutation_invariant=True,
    )
    model.build()  # adds the task-dependent classifier, as Model.setup() does before training
    return model.eval()


def voiced_span(clip: AudioClip, offset: float = 0.0) -> TimeSpan:
    """Where espeak's output actually has sound (it pads with silence), shifted by `offset`."""
    import librosa

    _, (a, b) = librosa.effects.trim(clip.samples, top_db=40)
    return TimeSpan(start=offset + a / clip.sample_rate, end=offset + b / clip.sample_rate)


@dataclass(frozen=True)
class Conversation:
    audio: AudioClip
    truth: tuple[tuple[TimeSpan, int], ...]  # voiced span, speaker index (0 speaks first)


@pytest.fixture(scope="session")
def conversation(tmp_path_factory) -> Conversation:
    """A, gap, B, gap, A, gap, B: four distinct sentences of 2-3 s each, alternating between two voices."""
    folder = tmp_path_factory.mktemp("conversation")
    lines = [
        ("The quick brown fox jumps over the lazy dog near the river.", LOW),
        ("She sells sea shells by the sea shore every summer.", HIGH),
        ("I would like a cup of coffee and a slice of cake.", LOW),
        ("Tomorrow we are going to the museum with my cousins.", HIGH),
    ]
    clips = [espeak(text, folder / f"line{i}.wav", **voice).resample(16_000) for i, (text, voice) in enumerate(lines)]
    gap = 0.7
    truth, t = [], 0.0
    for i, clip in enumerate(clips):
        truth.append((voiced_span(clip, t), i % 2))
        t += clip.duration + gap
    return Conversation(concat(*clips, gap=gap), tuple(truth))


@pytest.fixture(scope="session")
def segmentation(model_store):
    from serve_apps.diarize.segmentation import SegmentationModel

    return SegmentationModel(model_store.resolve("pyannote-segmentation-3.0"))


@pytest.fixture(scope="session")
def campplus(model_store):
    from serve_apps.diarize.embedding import CamPlusPlusEmbedder

    return CamPlusPlusEmbedder(model_store.resolve("campplus-sv-zh-en"))


def unit_rows(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True)

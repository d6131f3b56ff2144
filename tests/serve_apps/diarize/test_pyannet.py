"""PyanNet run without pyannote.audio (serve_apps/diarize/pyannet.py) against pyannote's own model and Inference."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from octavia.audio import AudioClip
from octavia.errors import ModelIntegrityError
from serve_apps.diarize.segmentation import SegmentationModel
from tests.serve_apps.diarize.conftest import save_tiny_pyannote_model, tiny_pyannet

SR = 16_000


def pyannote_model(path):
    from serve_apps.diarize.pyannote_pipeline import import_pyannote_audio

    return import_pyannote_audio().Model.from_pretrained(path, map_location="cpu").eval()


def pyannote_windows(model, samples: np.ndarray, step: float) -> np.ndarray:
    import torch
    from pyannote.audio import Inference

    inference = Inference(model, window="sliding", step=step, skip_aggregation=True, skip_conversion=True)
    return inference({"waveform": torch.from_numpy(samples)[None], "sample_rate": SR}).data


def speechlike(seconds: float, seed: int = 0) -> AudioClip:
    """Noise with a syllable-rate envelope: something for the network's units to respond to."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    envelope = 0.5 + 0.5 * np.sin(2 * np.pi * 4 * t) * np.sin(2 * np.pi * 0.3 * t)
    return AudioClip((0.1 * envelope * rng.standard_normal(len(t))).astype(np.float32), SR)


def tiny_variants():
    from pyannote.audio.core.task import Problem, Resolution, Specifications
    from pyannote.audio.models.segmentation import PyanNet

    yield "powerset", tiny_pyannet(window=5.0)
    import torch

    torch.manual_seed(1)
    split = PyanNet(
        sincnet={"stride": 5},
        lstm={"hidden_size": 8, "num_layers": 2, "bidirectional": False, "monolithic": False},
        linear={"hidden_size": 8, "num_layers": 2},
    )
    split.specifications = Specifications(
        problem=Problem.MULTI_LABEL_CLASSIFICATION, resolution=Resolution.FRAME, duration=4.0,
        classes=["a", "b"], permutation_invariant=True,
    )  # fmt: skip
    split.build()
    yield "multilabel, one LSTM per layer, stride 5", split.eval()


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory):
    from serve_apps.diarize.pyannote_pipeline import import_pyannote_audio

    import_pyannote_audio()
    root = tmp_path_factory.mktemp("pyannet")
    return {name: save_tiny_pyannote_model(model, root / f"m{i}" / "pytorch_model.bin")
            for i, (name, model) in enumerate(tiny_variants())}  # fmt: skip


@pytest.mark.parametrize("name", ["powerset", "multilabel, one LSTM per layer, stride 5"])
def test_tiny_network_gives_pyannotes_outputs_frames_and_receptive_field(tiny_models, name, no_network):
    import torch

    path = tiny_models[name]
    ours, theirs = SegmentationModel(path), pyannote_model(path)
    window = round(ours.window_duration * SR)
    batch = torch.from_numpy(np.stack([speechlike(window / SR, seed).samples for seed in range(3)]))[:, None]
    with torch.inference_mode():
        expected = theirs(batch).numpy()
        got = ours.network(batch).numpy()
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, atol=1e-5)
    for samples in (0, 100, 990, 991, 1261, SR, window, 3 * window + 17):
        assert ours._segmenter.num_frames(samples) == theirs.num_frames(samples), samples
    field = theirs.receptive_field
    assert (ours.frame_start, ours.frame_step, ours.frame_duration) == pytest.approx(
        (field.start, field.step, field.duration), abs=1e-12
    )


@pytest.mark.parametrize("seconds", [2.0, 5.0, 7.5, 8.1, 12.3])
def test_windows_are_cut_as_pyannotes_inference_cuts_them(tiny_models, seconds):
    """Shorter than a window, exactly one, whole steps, and a zero-padded remainder."""
    path = tiny_models["powerset"]
    ours = SegmentationModel(path, step=1.25)
    clip = speechlike(seconds, seed=7)
    expected = pyannote_windows(pyannote_model(path), clip.samples, step=1.25)
    got = ours.window_outputs(clip)
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, atol=1e-5)


def test_real_segmentation_3_0_matches_pyannote(model_store, no_network):
    path = model_store.resolve("pyannote-segmentation-3.0")
    ours = SegmentationModel(path)
    clip = speechlike(23.0, seed=3)
    expected = pyannote_windows(pyannote_model(path), clip.samples, step=ours.step)
    got = ours.window_outputs(clip)
    assert got.shape == expected.shape  # 10 s windows every 2.5 s: 6 whole, then a padded one
    assert got.shape[0] == 7
    np.testing.assert_allclose(got, expected, atol=1e-4)
    assert np.array_equal(got.argmax(axis=-1), expected.argmax(axis=-1))


def test_loading_and_running_never_imports_pyannote_audio_or_lightning(model_store):
    """The point of the module: a speaker-embedding replica starts without pyannote's import chain."""
    script = (
        "import sys\n"
        "from octavia.audio import AudioClip\n"
        "from serve_apps.diarize.segmentation import SegmentationModel\n"
        f"model = SegmentationModel({str(model_store.resolve('pyannote-segmentation-3.0'))!r})\n"
        "model.speaker_segments(AudioClip.silence(3.0, 16000))\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('pyannote', 'lightning', 'torchmetrics')))\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_refuses_a_pyannote_checkpoint_of_another_architecture(tmp_path):
    import torch

    from serve_apps.diarize.pyannote_pipeline import import_pyannote_audio

    import_pyannote_audio()
    from pyannote.audio.core.task import Problem, Resolution, Specifications
    from pyannote.audio.models.embedding import XVectorMFCC

    torch.manual_seed(0)
    embedding = XVectorMFCC(mfcc={"n_mfcc": 20}, dimension=8)
    embedding.specifications = Specifications(problem=Problem.REPRESENTATION, resolution=Resolution.CHUNK, duration=5.0)
    path = save_tiny_pyannote_model(embedding.eval(), tmp_path / "xvector" / "pytorch_model.bin")
    with pytest.raises(ModelIntegrityError, match=r"holds a pyannote\.audio\.models\.embedding.*not a PyanNet"):
        SegmentationModel(path.parent)

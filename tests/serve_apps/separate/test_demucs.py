"""DemucsEngine with a tiny randomly-initialised HTDemucs saved in demucs' own formats."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from octavia.audio import AudioClip
from octavia.errors import ModelIntegrityError
from octavia.models.store import ModelStore
from serve_apps.separate.demucs import DemucsEngine
from serve_apps.separate.engine import create_separation_engine

SOURCES = ["drums", "bass", "other", "vocals"]
MODEL_RATE = 8_000  # tiny model, low rate: the transformer attends over few frames, so the test stays fast


@pytest.fixture(scope="module")
def tiny_model():
    import torch
    from demucs.htdemucs import HTDemucs

    torch.manual_seed(0)
    model = HTDemucs(
        sources=SOURCES,
        samplerate=MODEL_RATE,
        segment=1,
        channels=4,
        depth=2,
        nfft=256,
        t_layers=1,
        t_heads=1,
        dconv_comp=4,
    )
    return model.eval()


def _package(model) -> dict:
    """What `demucs.states.serialize_model` writes, minus `training_args` (its only use of omegaconf, which the
    inference install does not have)."""
    from demucs.states import get_state

    args, kwargs = model._init_args_kwargs
    return {"klass": type(model), "args": args, "kwargs": kwargs, "state": get_state(model, None, half=False)}


@pytest.fixture(scope="module")
def package_file(tiny_model, tmp_path_factory) -> Path:
    import torch

    path = tmp_path_factory.mktemp("demucs") / "tiny.th"
    torch.save(_package(tiny_model), path)
    return path


@pytest.fixture(scope="module")
def engine(package_file) -> DemucsEngine:
    return DemucsEngine(package_file, shifts=0, device="cpu")


def _mix(seconds: float, rate: int) -> np.ndarray:
    rng = np.random.default_rng(1)
    t = np.arange(int(seconds * rate)) / rate
    tone = 0.3 * np.sin(2 * np.pi * 220 * t)
    return np.stack([tone + 0.05 * rng.standard_normal(t.size), tone]).astype(np.float32)


def test_vocals_and_background_are_the_models_sources(tiny_model, engine) -> None:
    import torch
    from demucs.apply import apply_model

    mix = AudioClip(_mix(1.5, MODEL_RATE), MODEL_RATE)
    stems = engine.separate(mix)

    assert stems.vocals.samples.shape == stems.background.samples.shape == mix.samples.shape
    assert stems.vocals.sample_rate == MODEL_RATE
    # The same normalisation and model run by hand: vocals is source 3, background the other three summed.
    ref = torch.from_numpy(mix.samples).mean(0)
    mean, std = ref.mean(), ref.std() + 1e-8
    with torch.inference_mode():
        out = apply_model(tiny_model, ((torch.from_numpy(mix.samples) - mean) / std)[None], shifts=0)[0]
    out = (out * std + mean / 4).numpy()
    np.testing.assert_allclose(stems.vocals.samples, out[3], atol=1e-4)
    np.testing.assert_allclose(stems.background.samples, out[:3].sum(axis=0), atol=1e-4)
    np.testing.assert_allclose(stems.vocals.samples + stems.background.samples, out.sum(axis=0), atol=1e-4)
    assert np.abs(stems.vocals.samples).max() > 1e-4  # a random model still outputs something


def test_mono_16k_comes_back_mono_16k_with_the_same_length(engine) -> None:
    mono = AudioClip(_mix(1.0, 16_000)[0], 16_000)
    stems = engine.separate(mono)

    assert stems.vocals.samples.shape == stems.background.samples.shape == mono.samples.shape
    assert stems.vocals.sample_rate == stems.background.sample_rate == 16_000


def test_a_bag_in_the_hub_format_loads_from_the_model_store(tiny_model, tmp_path) -> None:
    """demucs' Hugging Face layout (as read by `demucs.hf`): <name>.yaml + <sig>.safetensors with json metadata,
    mirrored into the model store's directory for the catalogue's "htdemucs"."""
    from safetensors.torch import save_file

    bag = tmp_path / "htdemucs"
    bag.mkdir()
    args, kwargs = tiny_model._init_args_kwargs
    state = {k: v.contiguous() for k, v in tiny_model.state_dict().items()}
    meta = {"klass": "demucs.htdemucs.HTDemucs", "args": json.dumps(list(args)), "kwargs": json.dumps(kwargs)}
    save_file(state, bag / "abcd1234.safetensors", metadata=meta)
    (bag / "htdemucs.yaml").write_text("models: ['abcd1234']\n")

    engine = create_separation_engine("htdemucs", store=ModelStore(root=tmp_path))
    assert isinstance(engine, DemucsEngine)
    assert engine.sources == tuple(SOURCES) and engine.sample_rate == MODEL_RATE
    mix = AudioClip(_mix(1.0, MODEL_RATE), MODEL_RATE)
    assert engine.separate(mix).background.samples.shape == mix.samples.shape

    save_file(state, bag / "abcd1234.safetensors", metadata={**meta, "klass": "os.system"})
    with pytest.raises(ModelIntegrityError, match="not a demucs model class"):
        DemucsEngine(bag)


class _RunsCommand:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_a_package_that_names_other_code_is_refused(tiny_model, tmp_path) -> None:
    import torch

    marker = tmp_path / "pwned"
    package = {**_package(tiny_model), "training_args": _RunsCommand(marker)}
    torch.save(package, tmp_path / "evil.th")
    with pytest.raises(ModelIntegrityError, match="refusing"):
        DemucsEngine(tmp_path / "evil.th")
    assert not marker.exists()

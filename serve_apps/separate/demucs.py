"""Demucs separation (quality profile): vocals against the sum of every other source.

Models load three ways, none of which runs full pickle:
- a demucs model name ("htdemucs", "htdemucs_ft", ...): the bag of safetensors files demucs publishes on the
  Hugging Face hub (`demucs.hf`), for users who are online;
- a directory holding such a bag (`<name>.yaml` + `<sig>.safetensors`), e.g. a mirror of that hub repository;
- a file in demucs' own package format (`demucs.states.serialize_model` saved with `torch.save`, i.e. the legacy
  `.th` files): read with torch's weights-only unpickler that only allows the demucs model classes.
`demucs.pretrained.get_model` and `demucs.states.load_model(path)` are not used on files because they fall back to
`torch.load(weights_only=False)`.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from octavia.audio import AudioClip
from octavia.errors import ModelIntegrityError, ModelNotAvailableError
from octavia.models.store import ModelStore
from serve_apps.separate.engine import SeparationEngine, Stems, as_stereo_pairs, match_layout

if TYPE_CHECKING:
    from torch import nn

VOCALS = "vocals"


def _model_classes() -> dict[str, type]:
    from demucs.demucs import Demucs
    from demucs.hdemucs import HDemucs
    from demucs.htdemucs import HTDemucs

    return {f"{k.__module__}.{k.__name__}": k for k in (Demucs, HDemucs, HTDemucs)}


def load_package(path: Path) -> nn.Module:
    """A `serialize_model` package ({'klass', 'args', 'kwargs', 'state', ...}) without full pickle."""
    from fractions import Fraction

    import torch
    from demucs.states import load_model

    classes = _model_classes()
    try:
        with torch.serialization.safe_globals([*classes.values(), Fraction]):
            package = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise ModelIntegrityError(
            f"{path} is not a plain demucs model package; refusing to load it (it may run code): {exc}",
            details={"path": str(path)},
        ) from exc
    if not isinstance(package, dict) or package.get("klass") not in classes.values():
        raise ModelIntegrityError(f"{path} is not a demucs model package", details={"path": str(path)})
    return load_model(package)


def load_safetensors(path: Path) -> nn.Module:
    """demucs' hub format; the class named in the metadata must be a demucs model before demucs instantiates it."""
    from demucs.hf import load_safetensors_model
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        klass = (f.metadata() or {}).get("klass")
    if klass not in _model_classes():
        raise ModelIntegrityError(f"{path} names {klass!r}, not a demucs model class", details={"path": str(path)})
    return load_safetensors_model(path)


def _bag(models: list[nn.Module], spec: dict[str, Any]) -> nn.Module:
    from demucs.apply import BagOfModels

    return BagOfModels(models, spec.get("weights"), spec.get("segment"))


def load_bag_dir(directory: Path) -> nn.Module:
    import yaml

    named = directory / f"{directory.name}.yaml"  # the store keeps "htdemucs" in htdemucs/htdemucs.yaml
    specs = [named] if named.is_file() else sorted(directory.glob("*.yaml"))
    if len(specs) != 1:
        raise ModelNotAvailableError(f"{directory} should hold one demucs bag <name>.yaml, found {len(specs)}")
    spec = yaml.safe_load(specs[0].read_text())
    return _bag([load_safetensors(directory / f"{sig}.safetensors") for sig in spec["models"]], spec)


def load_from_hub(name: str) -> nn.Module:
    """The named bag from demucs' Hugging Face repository (cached by huggingface_hub)."""
    import yaml
    from demucs.hf import DEFAULT_NAMESPACE, hf_repo_name
    from huggingface_hub import hf_hub_download

    repo = f"{DEFAULT_NAMESPACE}/{hf_repo_name(name)}"
    try:
        spec = yaml.safe_load(Path(hf_hub_download(repo, f"{name}.yaml")).read_text())
        files = [Path(hf_hub_download(repo, f"{sig}.safetensors")) for sig in spec["models"]]
    except Exception as exc:  # hub clients raise many error types for "offline"
        raise ModelNotAvailableError(
            f"demucs model {name!r} could not be fetched from hf://{repo}: {exc}. Offline, use the offline profile "
            "(separation spleeter-2stems) or pass a local demucs model file or directory.",
            details={"model": name},
        ) from exc
    return _bag([load_safetensors(f) for f in files], spec)


class DemucsEngine(SeparationEngine):
    """Any demucs model; background = every non-vocal source summed."""

    name = "demucs"

    def __init__(
        self,
        model: str | Path = "htdemucs",
        *,
        store: ModelStore | None = None,
        device: str = "auto",
        shifts: int = 1,
        overlap: float = 0.25,
    ) -> None:
        import torch

        path = Path(model)
        if path.is_file():
            net = load_safetensors(path) if path.suffix == ".safetensors" else load_package(path)
        elif path.is_dir():
            net = load_bag_dir(path)
        else:
            # A catalogue name: a bag mirrored into the model store if there is one, else the hub.
            local = (store or ModelStore()).model_dir(str(model))
            net = load_bag_dir(local) if any(local.glob("*.yaml")) else load_from_hub(str(model))
        if VOCALS not in net.sources:
            raise ModelIntegrityError(f"demucs model {model} has no {VOCALS!r} source (it has {net.sources})")
        self._model = net.eval()
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self._device = device
        self._model.to(self._device)
        self._shifts = shifts
        self._overlap = overlap
        self.sources: tuple[str, ...] = tuple(net.sources)
        self.sample_rate: int = int(net.samplerate)

    def _separate(self, audio: AudioClip) -> Stems:
        import torch
        from demucs.apply import apply_model

        if audio.num_frames == 0:
            return Stems(audio, audio)
        vocal_index = self.sources.index(VOCALS)
        vocals, background = [], []
        for pair in as_stereo_pairs(audio):
            stereo = AudioClip(pair, audio.sample_rate).resample(self.sample_rate).samples
            mix = torch.from_numpy(np.ascontiguousarray(stereo))
            # Normalise like demucs/separate.py; the mean goes back spread over the sources so they sum to the mix.
            ref = mix.mean(0)
            mean, std = ref.mean(), ref.std() + 1e-8
            with torch.inference_mode():
                out = apply_model(
                    self._model,
                    ((mix - mean) / std)[None],
                    shifts=self._shifts,
                    split=True,
                    overlap=self._overlap,
                    device=self._device,
                    progress=False,
                )[0]
            out = (out * std + mean / len(self.sources)).cpu().numpy()  # (sources, 2, n)
            vocals.append(out[vocal_index])
            background.append(np.delete(out, vocal_index, axis=0).sum(axis=0))
        return Stems(
            vocals=match_layout(np.concatenate(vocals), self.sample_rate, audio),
            background=match_layout(np.concatenate(background), self.sample_rate, audio),
        )

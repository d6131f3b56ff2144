"""Source separation: split a mix into the voice and the background the dub is laid over.

Engines: `SpleeterEngine` (offline, `spleeter.py`), `DemucsEngine` (quality, `demucs.py`) and `PassthroughEngine`
(profile value `none`). `create_separation_engine` maps a profile's `separation` value to one of them.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from octavia.audio import AudioClip, quiet_gain

if TYPE_CHECKING:
    from octavia.models.store import ModelStore


@dataclass(frozen=True)
class Stems:
    vocals: AudioClip
    background: AudioClip  # same sample rate, channels and length as the input


class SeparationEngine(ABC):
    name: str

    def separate(self, audio: AudioClip) -> Stems:
        """The stems of `audio`. A very quiet input is raised before the model hears it and its stems lowered back
        (`octavia.audio.quiet_gain`): the models, trained on mastered music, miss voices far below that level."""
        gain = quiet_gain(audio.samples)
        if gain == 1.0:
            return self._separate(audio)
        stems = self._separate(audio.scaled(gain))
        return Stems(vocals=stems.vocals.scaled(1.0 / gain), background=stems.background.scaled(1.0 / gain))

    @abstractmethod
    def _separate(self, audio: AudioClip) -> Stems: ...


class PassthroughEngine(SeparationEngine):
    """No separation: both stems are the original mix, so the mixer ducks the original voice under the dub."""

    name = "none"

    def separate(self, audio: AudioClip) -> Stems:  # no model to raise the level for: the stems are the input
        return self._separate(audio)

    def _separate(self, audio: AudioClip) -> Stems:
        return Stems(vocals=audio, background=audio)


def match_layout(samples: np.ndarray, sample_rate: int, like: AudioClip) -> AudioClip:
    """Bring (channels, n) stereo-or-more model output back to `like`'s rate, channel count and exact length."""
    clip = AudioClip(np.ascontiguousarray(samples, dtype=np.float32), sample_rate).resample(like.sample_rate)
    out = clip.samples
    out = out.mean(axis=0) if like.samples.ndim == 1 else out[: like.channels]
    n = like.num_frames
    if out.shape[-1] < n:
        out = np.pad(out, [(0, 0)] * (out.ndim - 1) + [(0, n - out.shape[-1])])
    return AudioClip(np.ascontiguousarray(out[..., :n], dtype=np.float32), like.sample_rate)


def as_stereo_pairs(audio: AudioClip) -> list[np.ndarray]:
    """The input as (2, n) arrays: mono is doubled, more than two channels are taken two by two."""
    if audio.samples.ndim == 1:
        return [np.stack([audio.samples, audio.samples])]
    chans = list(audio.samples)
    if len(chans) % 2:
        chans.append(chans[-1])
    return [np.stack(chans[i : i + 2]) for i in range(0, len(chans), 2)]


def create_separation_engine(model: str, *, store: ModelStore | None = None) -> SeparationEngine:
    """The engine for a profile's `separation` value: "none", "spleeter-2stems" or a demucs model name/path."""
    if model == "none":
        return PassthroughEngine()
    if model.startswith("spleeter"):
        from serve_apps.separate.spleeter import SpleeterEngine

        return SpleeterEngine(store=store, model=model)
    from serve_apps.separate.demucs import DemucsEngine

    return DemucsEngine(model, store=store)

"""Source separation: split a mix into the voice and the background the dub is laid over."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

from octavia.audio import AudioClip


@dataclass(frozen=True)
class Stems:
    vocals: AudioClip
    background: AudioClip  # same sample rate, channels and length as the input


class SeparationEngine(ABC):
    name: str

    @abstractmethod
    def separate(self, audio: AudioClip) -> Stems: ...

"""Speaker diarization: who speaks when, over the WHOLE input.

Two interfaces, because the pipeline clusters speakers across a whole video while chunks are processed in
parallel: a `SpeakerEmbedder` turns speech spans into vectors (per chunk, in parallel), and a
`DiarizationEngine` labels a whole recording. The offline engine composes segmentation + embeddings + global
clustering; the quality engine runs pyannote's end-to-end pipeline.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np

from octavia.audio import AudioClip
from octavia.records import Diarization, TimeSpan


class SpeakerEmbedder(ABC):
    sample_rate = 16_000
    dimension: int

    @abstractmethod
    def embed(self, audio: AudioClip, spans: list[TimeSpan]) -> np.ndarray:
        """One L2-normalised embedding per span, shape (len(spans), dimension)."""


class DiarizationEngine(ABC):
    @abstractmethod
    def diarize(self, audio: AudioClip, num_speakers: int | None = None) -> Diarization:
        """Label the speakers of a recording; `num_speakers` fixes their number, None estimates it."""

"""Engines for the serving tests that need behaviour no real engine has on demand (failing, counting)."""

from __future__ import annotations

from octavia.audio import AudioClip
from octavia.records import Diarization, SpeakerTurn, Transcription
from serve_apps.asr.engine import AsrEngine
from serve_apps.diarize.engine import DiarizationEngine


class BrokenAsrEngine(AsrEngine):
    """Loads, then fails every call the way a dead GPU or a corrupt model does."""

    def languages(self) -> tuple[str, ...]:
        return ("en",)

    def transcribe(self, audio: AudioClip, language: str | None = None, *, offset: float = 0.0) -> Transcription:
        raise RuntimeError("CUDA error: an illegal memory access was encountered")


class WholeInputDiarizer(DiarizationEngine):
    """Like the quality profile's pyannote pipeline: labels whole recordings, has no per-chunk embeddings."""

    def diarize(self, audio: AudioClip, num_speakers: int | None = None) -> Diarization:
        return Diarization(turns=(SpeakerTurn(start=0.0, end=round(audio.duration, 3), speaker="SPEAKER_00"),))

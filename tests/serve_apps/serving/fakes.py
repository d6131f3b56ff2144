"""Engines for the serving tests that need behaviour no real engine has on demand (failing, counting)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np

from octavia.audio import AudioClip
from octavia.records import Diarization, SpeakerTurn, Transcription, Voice
from serve_apps.asr.engine import AsrEngine
from serve_apps.diarize.engine import DiarizationEngine
from serve_apps.tts.engine import TtsEngine


class BrokenAsrEngine(AsrEngine):
    """Loads, then fails every call the way a dead GPU or a corrupt model does."""

    def languages(self) -> tuple[str, ...]:
        return ("en",)

    def transcribe(
        self, audio: AudioClip, language: str | None = None, *, offset: float = 0.0, check_language: bool = False
    ) -> Transcription:
        raise RuntimeError("CUDA error: an illegal memory access was encountered")


class WholeInputDiarizer(DiarizationEngine):
    """Like the quality profile's pyannote pipeline: labels whole recordings, has no per-chunk embeddings."""

    def diarize(self, audio: AudioClip, num_speakers: int | None = None) -> Diarization:
        return Diarization(turns=(SpeakerTurn(start=0.0, end=round(audio.duration, 3), speaker="SPEAKER_00"),))


class RecordingTtsEngine(TtsEngine):
    """Speaks every line as 0.1 s of tone after blocking its thread `seconds_per_character` per character of text,
    and appends to `log` when each call ran, on which thread and for which text: what a test needs to see how many
    calls a replica ran at once."""

    name = "recording"

    def __init__(self, log: str, seconds_per_character: float = 0.05) -> None:
        self._log = Path(log)
        self._seconds_per_character = seconds_per_character

    def voices(self, language: str | None = None) -> tuple[Voice, ...]:
        return (Voice(id="tone", engine=self.name, languages=("en", "es")),)

    def synthesize(
        self, text: str, language: str, voice: str, *, speed: float = 1.0, reference: AudioClip | None = None
    ) -> AudioClip:
        started = time.monotonic()
        time.sleep(self._seconds_per_character * len(text))  # blocks its thread, as an engine's native code does
        with self._log.open("a") as f:  # one short append per call: lines from two threads do not interleave
            f.write(f"{started} {time.monotonic()} {threading.current_thread().name} {text}\n")
        return AudioClip(np.sin(np.linspace(0, 440, 2400, dtype=np.float32)), 24_000)

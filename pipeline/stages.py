"""The per-chunk and per-line stages, as callable classes that Ray Data runs in actors (or called directly).

A stage gets its settings as one JSON string (`StageContext`), builds its model clients in `__init__` (an actor
does it once; a stage run in the driver is handed the run's own), and maps one row to one row; each output row
carries `seconds`, the time the row took inside the stage (the dub logs it against the stage's wall time: what is
left is scheduling and transport). Results are cached in the artifact store, so a re-run after a crash finds
finished chunks and lines and does not recompute them.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from pydantic import Field

from octavia.audio import AudioClip
from octavia.records import Record
from pipeline.artifacts import ArtifactStore, content_key
from pipeline.chunking import Chunk
from pipeline.records import ChunkAnalysis

if TYPE_CHECKING:
    from pipeline.clients import ModelClients

SPEECH_RATE = 16_000
# A given source language is checked against what the ASR hears in one chunk of every four that have speech: an
# encoder pass each, a sample enough for the run's warning (every chunk would add ~10 % to the analysis).
LANGUAGE_CHECK_EVERY = 4


class StageContext(Record):
    clients: Literal["local", "serve"]
    profile: str
    separation: str  # engine name: "none", "spleeter-2stems", "htdemucs"
    asr_model: str
    artifact_root: str
    audio_key: str  # the decoded input audio's artifact key: what chunk results are keyed by
    mix_wav: str  # the input's audio at the mixing rate (for separation)
    language: str | None = None  # forced source language, None: detect per chunk
    serve_apps: dict[str, str] = Field(default_factory=dict)
    local_threads: int = 0  # "local" clients: Whisper and Kokoro threads (0: every core), as the driver's own


class SynthesisJob(Record):
    segment_id: int
    text: str
    language: str
    voice: str


class SynthesisResult(Record):
    segment_id: int
    audio_key: str
    duration: float
    cached: bool


def make_clients(ctx: StageContext) -> ModelClients:
    if ctx.clients == "serve":
        from pipeline.clients import ServeClients

        return ServeClients(ctx.serve_apps)
    from octavia.profiles import PROFILES
    from pipeline.clients import LocalClients

    return LocalClients(PROFILES[ctx.profile], ctx.separation, cpu_threads=ctx.local_threads)


def read_span(path: str | Path, start: float, end: float) -> AudioClip:
    """A slice of a WAV file without reading the rest of it."""
    import soundfile

    with soundfile.SoundFile(str(path)) as f:
        sr = f.samplerate
        a = round(start * sr)
        f.seek(min(a, f.frames))
        data = f.read(max(0, min(round(end * sr), f.frames) - a), dtype="float32", always_2d=True)
    return AudioClip(np.ascontiguousarray(data.T), sr)


def chunk_key(ctx: StageContext, chunk: Chunk) -> str:
    config = {
        "asr": ctx.asr_model,
        "separation": ctx.separation,
        "language": ctx.language,
        "profile": ctx.profile,
        # Analyses (and stems) made before a very quiet input was raised for the models are redone.
        "model_level": "quiet-raised",
    }
    return content_key("chunk", config, ctx.audio_key, f"{chunk.start:.3f}-{chunk.end:.3f}")


class ChunkAnalyzer:
    """Separation, ASR and speaker embeddings for one chunk."""

    def __init__(self, context: str, clients: ModelClients | None = None) -> None:
        self.ctx = StageContext.model_validate_json(context)
        self.store = ArtifactStore(self.ctx.artifact_root)
        self.clients = clients or make_clients(self.ctx)

    def __call__(self, row: dict[str, Any]) -> dict[str, Any]:
        started = time.perf_counter()
        analysis = self._analyze(Chunk.model_validate_json(row["chunk"]), bool(row.get("check_language")))
        return {**analysis, "seconds": time.perf_counter() - started}

    def _analyze(self, chunk: Chunk, check_language: bool) -> dict[str, Any]:
        key = chunk_key(self.ctx, chunk)
        cached = self.store.get_record("chunks", key, ChunkAnalysis)
        if cached is not None:
            return {"analysis": cached.model_dump_json(), "cached": True}
        mix = read_span(self.ctx.mix_wav, chunk.start, chunk.end)
        stems_key = None
        voice = mix
        if self.ctx.separation != "none" and mix.num_frames:
            stems = self.clients.separate(mix)
            stems_key = key
            self.store.put_audio("vocals", key, stems.vocals)
            self.store.put_audio("background", key, stems.background)
            voice = stems.vocals
        speech = voice.mono().resample(SPEECH_RATE)
        transcription = self.clients.transcribe(speech, self.ctx.language, chunk.start, check_language)
        embedded = self.clients.embed_speech(speech, chunk.start)
        self.store.put_array("embeddings", key, np.asarray(embedded.vectors, dtype=np.float32))
        analysis = ChunkAnalysis(
            chunk=chunk,
            language=transcription.language,
            language_probability=transcription.language_probability,
            segments=transcription.segments,
            detected_language=transcription.detected_language,
            detected_language_probability=transcription.detected_language_probability,
            windows=tuple(embedded.windows),
            embeddings_key=key,
            stems_key=stems_key,
        )
        self.store.put_record("chunks", key, analysis)
        return {"analysis": analysis.model_dump_json(), "cached": False}


def language_check_chunks(chunks: Sequence[Chunk], every: int = LANGUAGE_CHECK_EVERY) -> set[int]:
    """The indexes of the chunks whose speech is also checked against a given source language: of every `every`
    chunks with speech, in order, the one with the most. A run with any speech checks at least one chunk, and a
    long music intro or a silent chunk does not use up a check."""
    speaking = [c for c in chunks if c.vad_speech_seconds > 0]
    groups = (speaking[i : i + every] for i in range(0, len(speaking), every))
    return {max(group, key=lambda c: c.vad_speech_seconds).index for group in groups}


def synthesis_key(job: SynthesisJob, profile: str) -> str:
    return content_key("tts", {"profile": profile, "voice": job.voice, "language": job.language}, job.text)


class LineSynthesizer:
    """Speaks one translated line in its speaker's voice."""

    def __init__(self, context: str, clients: ModelClients | None = None) -> None:
        self.ctx = StageContext.model_validate_json(context)
        self.store = ArtifactStore(self.ctx.artifact_root)
        self.clients = clients or make_clients(self.ctx)

    def __call__(self, row: dict[str, Any]) -> dict[str, Any]:
        started = time.perf_counter()
        job = SynthesisJob.model_validate_json(row["job"])
        key = synthesis_key(job, self.ctx.profile)
        path = self.store.audio_path("lines", key)
        if path.exists():
            import soundfile

            info = soundfile.info(str(path))
            result = SynthesisResult(segment_id=job.segment_id, audio_key=key, duration=info.duration, cached=True)
        else:
            clip = self.clients.synthesize(job.text, job.language, job.voice)
            self.store.put_audio("lines", key, clip)
            result = SynthesisResult(segment_id=job.segment_id, audio_key=key, duration=clip.duration, cached=False)
        return {"result": result.model_dump_json(), "seconds": time.perf_counter() - started}

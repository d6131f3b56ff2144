"""Records of a dub run: what was asked, what each chunk produced, and the transcript handed back."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator

from octavia.records import Record, Segment, SpeakerProfile, TimeSpan, Translation
from pipeline.chunking import Chunk
from pipeline.timeline import FitPlan, LineFit

Separation = Literal["auto", "none", "spleeter", "demucs"]


class DubRequest(Record):
    """Everything `octavia dub` (or a control-plane job) asks for."""

    input: Path
    targets: tuple[str, ...] = Field(min_length=1)
    source: str | None = None  # None: detect
    out_dir: Path
    profile: Literal["auto", "offline", "quality"] = "auto"
    speakers: int | None = Field(default=None, ge=1, le=32)  # None: estimate
    separation: Separation = "auto"
    keep_original_audio: bool = False
    burn_subtitles: bool = False
    max_chunk_seconds: float = Field(default=60.0, gt=5)
    max_speedup: float = Field(default=1.25, ge=1.0, le=2.0)
    ducking: Literal["soft", "standard", "cinematic"] = "standard"
    target_lufs: float = Field(default=-16.0, ge=-40, le=-5)

    @field_validator("input", "out_dir")
    @classmethod
    def _absolute(cls, path: Path) -> Path:
        # ffmpeg reads a relative `clip:2.mp4` or `out:x/...` as a URL (protocol "clip", "out"); from "/" on, a file
        return path.absolute()


class ChunkAnalysis(Record):
    """What the parallel stage found in one chunk (times on the whole input's timeline)."""

    chunk: Chunk
    language: str
    language_probability: float
    segments: tuple[Segment, ...]
    detected_language: str | None = None  # what the ASR heard when `language` was forced (see Transcription)
    detected_language_probability: float = 0.0
    windows: tuple[TimeSpan, ...]  # speech windows embedded for speaker clustering
    embeddings_key: str  # artifact key of the (len(windows), dim) float32 array
    stems_key: str | None  # artifact key of the chunk's separated vocals/background, when separation ran

    @property
    def speech_seconds(self) -> float:
        """How much speech the chunk's language detection rests on (what its vote and its confidence weigh)."""
        return sum(s.duration for s in self.segments)


class SpeakerSummary(Record):
    speaker: str
    profile: SpeakerProfile
    voices: dict[str, str]  # target language -> voice id
    speech_seconds: float


class DubbedLine(Record):
    """One line of one target language: its text, voice and where it ended up."""

    segment_id: int
    speaker: str | None
    text: str
    voice: str
    audio_key: str  # artifact key of the synthesized line (before time-fitting)
    synth_duration: float
    fit: LineFit | None = None  # None for lines with nothing to say


class LanguageResult(Record):
    language: str
    lines: tuple[DubbedLine, ...]
    plan: FitPlan
    outputs: dict[str, str]  # kind (video, srt, vtt, wav) -> file name in the output directory


class RunInfo(Record):
    """How the run was made; `octavia redub` rebuilds from it."""

    request: DubRequest
    profile: str
    input_sha256: str
    duration: float
    separation: str
    # Where the full-length track the dub goes over lives in the artifact store (stage "input": the original mix).
    background_stage: str
    background_key: str


class TranscriptDocument(Record):
    """`<stem>.transcript.json`: the source transcript, speakers, translations and fitted timing per language."""

    version: int = 1
    source_language: str
    warnings: tuple[str, ...] = ()  # what the run doubted though it succeeded (e.g. a --from the speech contradicts)
    duration: float
    segments: tuple[Segment, ...]
    speakers: tuple[SpeakerSummary, ...]
    translations: dict[str, tuple[Translation, ...]]
    languages: dict[str, LanguageResult]
    run: RunInfo


class ProgressEvent(Record):
    stage: str
    completed: int
    total: int
    eta_seconds: float | None = None

    @property
    def fraction(self) -> float:
        return self.completed / self.total if self.total else 1.0

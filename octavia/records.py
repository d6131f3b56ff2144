"""Typed records that flow between engines and pipeline stages.

They are pydantic models so that every stage result can be saved as JSON and read back unchanged
(`model_dump_json` / `model_validate_json`). Times are seconds from the start of the input media.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class Record(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class TimeSpan(Record):
    start: float = Field(ge=0)
    end: float = Field(ge=0)

    @model_validator(mode="after")
    def _ordered(self) -> TimeSpan:
        if self.end < self.start:
            raise ValueError(f"end {self.end} is before start {self.start}")
        return self

    @property
    def duration(self) -> float:
        return self.end - self.start


class Word(TimeSpan):
    text: str
    probability: float = 1.0


class Segment(TimeSpan):
    """One sentence-like unit of recognised speech."""

    id: int
    text: str
    words: tuple[Word, ...] = ()
    speaker: str | None = None
    avg_logprob: float | None = None
    no_speech_prob: float | None = None


class Transcription(Record):
    language: str
    language_probability: float
    duration: float
    segments: tuple[Segment, ...]
    # When `language` was given rather than detected: what the model hears in the speech (None: not checked).
    detected_language: str | None = None
    detected_language_probability: float = 0.0

    @property
    def text(self) -> str:
        return " ".join(s.text.strip() for s in self.segments).strip()


class SpeakerTurn(TimeSpan):
    speaker: str


class Diarization(Record):
    turns: tuple[SpeakerTurn, ...]

    @property
    def speakers(self) -> tuple[str, ...]:
        return tuple(sorted({t.speaker for t in self.turns}))

    def speaker_at(self, span: TimeSpan) -> str | None:
        """The speaker who talks most within `span` (None when nobody does)."""
        overlap: dict[str, float] = {}
        for turn in self.turns:
            shared = min(turn.end, span.end) - max(turn.start, span.start)
            if shared > 0:
                overlap[turn.speaker] = overlap.get(turn.speaker, 0.0) + shared
        return max(overlap, key=lambda s: overlap[s]) if overlap else None


class TranslationRequest(Record):
    """One segment to translate; the neighbours give the translator sentence context."""

    segment_id: int
    text: str
    context_before: str = ""
    context_after: str = ""


class Translation(Record):
    segment_id: int
    source_text: str
    text: str
    source_language: str
    target_language: str


Gender = Literal["female", "male", "unknown"]


class Voice(Record):
    """A voice an engine can speak with."""

    id: str
    engine: str
    languages: tuple[str, ...]
    gender: Gender = "unknown"
    # Typical fundamental frequency of the voice, used to match it to a source speaker.
    median_f0_hz: float | None = None


class SpeakerProfile(Record):
    """What we know about a source speaker's voice, estimated from their audio."""

    speaker: str
    median_f0_hz: float | None
    f0_low_hz: float | None = None
    f0_high_hz: float | None = None
    gender: Gender = "unknown"
    voiced_seconds: float = 0.0

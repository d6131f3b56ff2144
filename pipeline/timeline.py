"""Typed records of the dub timeline: where each dubbed line sits and how it was made to fit.

Two clocks exist. *Source* time is the input media's. *Output* time is the dubbed file's: it equals source time
unless a line could not fit even sped up and using the silence after it, in which case the video is slowed over
that line's span and everything after it shifts later (`FitPlan.to_output_time`).
"""

from __future__ import annotations

import math

from pydantic import Field, model_validator

from octavia.records import Record, TimeSpan


class LineTiming(TimeSpan):
    """A line to place: its slot in the source (start, end) and the length of its synthesized speech."""

    segment_id: int
    synth_duration: float = Field(ge=0)


class VideoSlowdown(TimeSpan):
    """The source span [start, end] plays over `output_duration` seconds in the output (video slowed).

    A zero-length span (two lines starting at the same instant) is a freeze: the picture holds for
    `output_duration` seconds.
    """

    output_duration: float = Field(ge=0)

    @model_validator(mode="after")
    def _not_faster(self) -> VideoSlowdown:
        if self.output_duration < self.duration - 1e-9:
            raise ValueError(f"a slowdown cannot shorten its span ({self.duration} s -> {self.output_duration} s)")
        return self

    @property
    def factor(self) -> float:
        """How many times longer the span plays (inf for a freeze)."""
        return self.output_duration / self.duration if self.duration > 0 else math.inf

    @property
    def added(self) -> float:
        """Seconds this slowdown adds to the output."""
        return self.output_duration - self.duration


class LineFit(TimeSpan):
    """Where a line was placed, on the output timeline (start, end), and what it took to fit it."""

    segment_id: int
    source_start: float = Field(ge=0)
    source_end: float = Field(ge=0)
    speed: float = Field(ge=1.0)  # tempo applied to the synthesized speech: 1.0 untouched, 1.25 = 25 % faster
    borrowed_silence: float = Field(default=0.0, ge=0)  # seconds used past the source slot's end
    slowdown: VideoSlowdown | None = None  # set when the line needed the video slowed under it


class FitPlan(Record):
    source_duration: float = Field(ge=0)
    duration: float = Field(ge=0)  # of the output; == source_duration unless there are slowdowns
    max_speedup: float
    lines: tuple[LineFit, ...]
    slowdowns: tuple[VideoSlowdown, ...] = ()

    @property
    def has_slowdown(self) -> bool:
        return bool(self.slowdowns)

    def to_output_time(self, t: float) -> float:
        """Map a source time to the output timeline (identity when nothing was slowed)."""
        out = t
        for s in self.slowdowns:
            if t > s.end:
                out += s.added
            elif t > s.start:
                out += (t - s.start) * (s.factor - 1.0)
        return out

    def speech_spans(self) -> tuple[TimeSpan, ...]:
        """Output-time spans where dubbed speech plays (what the background ducks under)."""
        return tuple(TimeSpan(start=line.start, end=line.end) for line in self.lines if line.end > line.start)

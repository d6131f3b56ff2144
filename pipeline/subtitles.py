"""Subtitles of the dub: cues laid out for reading (<= 42 characters a line, <= 2 lines), written as SRT or WebVTT.

Layout follows common broadcast guidance: two balanced lines rather than one full line and a short one; text
that needs more than two lines becomes consecutive cues sharing the original cue's time by character count.
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Literal

from pydantic import field_validator

from octavia.records import TimeSpan
from pipeline.timeline import FitPlan

MAX_LINE_CHARS = 42
MAX_LINES = 2
SubtitleFormat = Literal["srt", "vtt"]


class Cue(TimeSpan):
    text: str
    speaker: str | None = None

    @field_validator("text")
    @classmethod
    def _one_spaced(cls, text: str) -> str:
        return " ".join(text.split())


def cues_from_plan(
    plan: FitPlan, texts: Mapping[int, str], speakers: Mapping[int, str] | None = None
) -> tuple[Cue, ...]:
    """One cue per placed line, on the output timeline, so subtitles follow the dub even after slowdowns."""
    speakers = speakers or {}
    return tuple(
        Cue(start=line.start, end=line.end, text=texts[line.segment_id], speaker=speakers.get(line.segment_id))
        for line in plan.lines
        if texts.get(line.segment_id, "").strip() and line.end > line.start
    )


def layout(cues: Sequence[Cue], width: int = MAX_LINE_CHARS, max_lines: int = MAX_LINES) -> tuple[Cue, ...]:
    """Wrap every cue's text (lines joined by "\\n"), splitting cues that would need more than `max_lines`."""
    out: list[Cue] = []
    for cue in sorted(cues, key=lambda c: c.start):
        if not cue.text:
            continue
        chunks = wrap_text(cue.text, width, max_lines)
        weights = [len(chunk.replace("\n", " ")) for chunk in chunks]
        t = cue.start
        for i, (chunk, weight) in enumerate(zip(chunks, weights, strict=True)):
            end = cue.end if i == len(chunks) - 1 else t + cue.duration * weight / sum(weights)
            out.append(Cue.model_construct(start=t, end=end, text=chunk, speaker=cue.speaker))
            t = end
    return tuple(out)


def wrap_text(text: str, width: int = MAX_LINE_CHARS, max_lines: int = MAX_LINES) -> list[str]:
    """Screenfuls of at most `max_lines` lines of at most `width` characters (words longer than a line are cut)."""
    lines = textwrap.wrap(" ".join(text.split()), width=width, break_long_words=True, break_on_hyphens=False)
    screens = [lines[i : i + max_lines] for i in range(0, len(lines), max_lines)]
    return ["\n".join(_balance(screen, width)) for screen in screens]


def _balance(lines: list[str], width: int) -> list[str]:
    """Re-split two greedy lines at the space nearest the middle, as long as both still fit."""
    if len(lines) != 2:
        return lines
    text = " ".join(lines)
    middle = len(text) / 2
    spaces = [i for i, ch in enumerate(text) if ch == " " and i <= width and len(text) - i - 1 <= width]
    if not spaces:
        return lines
    cut = min(spaces, key=lambda i: abs(i - middle))
    return [text[:cut], text[cut + 1 :]]


def to_string(cues: Sequence[Cue], fmt: SubtitleFormat, *, label_speakers: bool = False) -> str:
    """SRT or WebVTT text of `cues` after `layout`. Times are rounded to the millisecond."""
    import pysubs2

    subs = pysubs2.SSAFile()
    for cue in layout(cues):
        text = f"{cue.speaker}: {cue.text}" if label_speakers and cue.speaker else cue.text
        # pysubs2 holds SSA text: braces would be read as override tags, newlines are "\N".
        text = text.replace("{", "(").replace("}", ")")
        if fmt == "vtt":  # WebVTT is HTML-like: these three must be escaped
            text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        subs.append(pysubs2.SSAEvent(start=_ms(cue.start), end=_ms(cue.end), text=text.replace("\n", r"\N")))
    return subs.to_string(fmt)


def write_subtitles(cues: Sequence[Cue], path: str | Path, *, label_speakers: bool = False) -> Path:
    """Write `path` as SRT or WebVTT according to its suffix (.srt / .vtt), UTF-8."""
    path = Path(path)
    fmt = path.suffix.lower().lstrip(".")
    if fmt not in ("srt", "vtt"):
        raise ValueError(f"subtitle file must end in .srt or .vtt, got {path.name}")
    path.write_text(to_string(cues, fmt, label_speakers=label_speakers), encoding="utf-8")  # type: ignore[arg-type]
    return path


def _ms(seconds: float) -> int:
    return round(seconds * 1000)

"""Segments cut where the speaker changes.

Whisper ends a segment at pauses and punctuation, not at a change of voice: a quick question and its answer are
often one segment (every question and answer of a telephone-band clip were), and a segment is dubbed as one line
in one voice. Each word gets the speaker who talks most over it, and a segment is cut between words where that
speaker changes and stays changed for at least `min_seconds` (diarization turns come from 1.5 s windows: a
shorter run is more likely their blur than a real interjection).
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Sequence

from octavia.records import Diarization, Segment, Word

MIN_TURN_SECONDS = 0.5


def split_at_speaker_changes(
    segments: Sequence[Segment], diarization: Diarization, *, min_seconds: float = MIN_TURN_SECONDS
) -> tuple[Segment, ...]:
    """`segments` with their speakers, cut where the speaker changes, numbered again from 0."""
    # Each segment looks only at the turns that can overlap it: every word against every turn of an hour's
    # input took 4.4 s in the driver.
    turns = sorted(diarization.turns, key=lambda t: t.start)
    starts = [t.start for t in turns]
    longest = max((t.duration for t in turns), default=0.0)

    def near(segment: Segment) -> Diarization:
        first = bisect.bisect_left(starts, segment.start - longest)
        return Diarization(turns=tuple(turns[first : bisect.bisect_right(starts, segment.end)]))

    pieces = [piece for segment in segments for piece in _cut(segment, near(segment), min_seconds)]
    return tuple(piece.model_copy(update={"id": i}) for i, piece in enumerate(pieces))


def _cut(segment: Segment, diarization: Diarization, min_seconds: float) -> list[Segment]:
    runs = _speaker_runs(segment.words, diarization, min_seconds)
    if len(runs) < 2:
        return [segment.model_copy(update={"speaker": diarization.speaker_at(segment)})]
    pieces = []
    for i, (speaker, words) in enumerate(runs):
        start = segment.start if i == 0 else words[0].start
        end = segment.end if i == len(runs) - 1 else words[-1].end
        text = "".join(w.text for w in words).strip()
        pieces.append(segment.model_copy(update={"start": start, "end": max(start, end), "text": text,
                                                 "words": tuple(words), "speaker": speaker}))  # fmt: skip
    return pieces


def _speaker_runs(
    words: Sequence[Word], diarization: Diarization, min_seconds: float
) -> list[tuple[str | None, list[Word]]]:
    """Consecutive words of one speaker, each run at least `min_seconds` long (shorter ones join a neighbour)."""
    labels = [diarization.speaker_at(w) for w in words]
    # A word between two turns (in a pause the windows did not cover) takes the speaker before it, else after.
    for i in range(1, len(labels)):
        labels[i] = labels[i] or labels[i - 1]
    for i in range(len(labels) - 2, -1, -1):
        labels[i] = labels[i] or labels[i + 1]
    while True:
        grouped = itertools.groupby(zip(labels, words, strict=True), key=lambda pair: pair[0])
        runs = [(label, [word for _, word in run]) for label, run in grouped]
        short = min(range(len(runs)), key=lambda i: _seconds(runs[i][1]), default=0)
        if len(runs) < 2 or _seconds(runs[short][1]) >= min_seconds:
            return runs
        # The short run's words take the speaker of its longer neighbour (and join it, and the run beyond when
        # that one has the same speaker).
        neighbours = [i for i in (short - 1, short + 1) if 0 <= i < len(runs)]
        into = runs[max(neighbours, key=lambda i: _seconds(runs[i][1]))][0]
        first = sum(len(run) for _, run in runs[:short])
        labels[first : first + len(runs[short][1])] = [into] * len(runs[short][1])


def _seconds(words: Sequence[Word]) -> float:
    return words[-1].end - words[0].start

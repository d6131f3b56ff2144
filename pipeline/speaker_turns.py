"""Segments cut where the speaker changes.

Whisper ends a segment at pauses and punctuation, not at a change of voice: a quick question and its answer are
often one segment (every question and answer of a telephone-band clip were), and a segment is dubbed as one line
in one voice. Each word gets the speaker who talks most over it, and a segment is cut between words where that
speaker changes and stays changed for at least `min_seconds` (diarization turns come from 1.5 s windows: a
shorter run is more likely their blur than a real interjection).
"""

from __future__ import annotations

from collections.abc import Sequence

from octavia.records import Diarization, Segment, Word

MIN_TURN_SECONDS = 0.5


def split_at_speaker_changes(
    segments: Sequence[Segment], diarization: Diarization, *, min_seconds: float = MIN_TURN_SECONDS
) -> tuple[Segment, ...]:
    """`segments` with their speakers, cut where the speaker changes, numbered again from 0."""
    pieces = [piece for segment in segments for piece in _cut(segment, diarization, min_seconds)]
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
    runs: list[tuple[str | None, list[Word]]] = []
    for word, label in zip(words, labels, strict=True):
        if runs and runs[-1][0] == label:
            runs[-1][1].append(word)
        else:
            runs.append((label, [word]))
    while len(runs) > 1:
        short = min(range(len(runs)), key=lambda i: _seconds(runs[i][1]))
        if _seconds(runs[short][1]) >= min_seconds:
            break
        # Into the longer neighbour; runs on either side that then share a speaker become one.
        neighbours = [i for i in (short - 1, short + 1) if 0 <= i < len(runs)]
        into = max(neighbours, key=lambda i: _seconds(runs[i][1]))
        label = runs[into][0]
        runs[short] = (label, runs[short][1])
        merged: list[tuple[str | None, list[Word]]] = []
        for run_label, run_words in runs:
            if merged and merged[-1][0] == run_label:
                merged[-1] = (run_label, merged[-1][1] + run_words)
            else:
                merged.append((run_label, list(run_words)))
        runs = merged
    return runs


def _seconds(words: Sequence[Word]) -> float:
    return words[-1].end - words[0].start

"""Split a long input into chunks at silences so chunks can be processed in parallel."""

from __future__ import annotations

import math
from collections.abc import Sequence
from itertools import pairwise

from octavia.records import Record, TimeSpan

DEFAULT_MAX_CHUNK_SECONDS = 60.0


class Chunk(TimeSpan):
    index: int
    vad_speech_seconds: float = 0.0  # how much of it the VAD heard as speech


class ChunkPlan(Record):
    duration: float
    chunks: tuple[Chunk, ...]


def plan_chunks(speech: Sequence[TimeSpan], duration: float, max_chunk: float = DEFAULT_MAX_CHUNK_SECONDS) -> ChunkPlan:
    """Cut points in the longest silence before each chunk would exceed `max_chunk` seconds.

    Cuts never fall inside speech unless a single stretch of speech is longer than `max_chunk` (then it is cut
    at the limit). Chunks cover [0, duration] without gaps or overlaps.
    """
    if max_chunk <= 0:
        raise ValueError(f"max_chunk must be positive, got {max_chunk}")
    spans = sorted(speech, key=lambda s: s.start)
    # Silences between speech spans, as (start, end), plus the head and tail of the input.
    silences: list[tuple[float, float]] = []
    cursor = 0.0
    for s in spans:
        if s.start > cursor:
            silences.append((cursor, s.start))
        cursor = max(cursor, s.end)
    if cursor < duration:
        silences.append((cursor, duration))

    cuts: list[float] = []
    start = 0.0
    while duration - start > max_chunk:
        limit = start + max_chunk
        candidates = [(b - a, a, b) for a, b in silences if a < limit and b > start and (a + b) / 2 > start + 1.0]
        inside = [(min(b, limit) - max(a, start), max(a, start), min(b, limit)) for _, a, b in candidates]
        inside = [c for c in inside if c[0] > 0]
        if inside:
            # Prefer the longest silence; among equal ones the latest, so chunks stay long.
            _, a, b = max(inside, key=lambda c: (round(c[0], 2), c[1]))
            # Late in the silence (0.5 s before what follows) so chunks stay long, but never before its middle.
            cut = max((a + b) / 2, b - 0.5)
        else:
            cut = limit
        cut = math.floor(cut * 1000) / 1000  # whole milliseconds, never past the limit
        cuts.append(cut)
        start = cut
    bounds = [0.0, *cuts, duration]
    chunks = tuple(
        Chunk(index=i, start=a, end=b, vad_speech_seconds=round(b - a - _overlap(silences, a, b), 3))
        for i, (a, b) in enumerate(pairwise(bounds))
    )
    return ChunkPlan(duration=duration, chunks=chunks)


def _overlap(spans: Sequence[tuple[float, float]], start: float, end: float) -> float:
    """Seconds of the disjoint `spans` inside [start, end]."""
    return sum(max(0.0, min(b, end) - max(a, start)) for a, b in spans)

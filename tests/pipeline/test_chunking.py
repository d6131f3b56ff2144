from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from octavia.records import TimeSpan
from pipeline.chunking import plan_chunks


def spans(*pairs: tuple[float, float]) -> list[TimeSpan]:
    return [TimeSpan(start=a, end=b) for a, b in pairs]


def test_short_input_is_one_chunk():
    plan = plan_chunks(spans((1, 5)), 30.0, max_chunk=60)
    assert [(c.start, c.end) for c in plan.chunks] == [(0.0, 30.0)]


def test_cuts_in_the_longest_silence_before_the_limit():
    # Silences: 10-12 (2 s), 20-25 (5 s), 40-41 (1 s). Limit 45 s: the 5 s silence wins, cut 0.5 s before speech.
    plan = plan_chunks(spans((0, 10), (12, 20), (25, 40), (41, 70)), 70.0, max_chunk=45)
    assert plan.chunks[0].end == pytest.approx(24.5)
    assert plan.chunks[-1].end == 70.0


def test_speech_longer_than_the_limit_is_cut_at_the_limit():
    plan = plan_chunks(spans((0, 100)), 100.0, max_chunk=30)
    assert [c.end for c in plan.chunks] == [30.0, 60.0, 90.0, 100.0]


def test_speech_free_input():
    plan = plan_chunks([], 125.0, max_chunk=60)
    assert plan.chunks[0].start == 0.0 and plan.chunks[-1].end == 125.0
    assert all(c.duration <= 60 for c in plan.chunks)


@given(
    st.lists(st.tuples(st.floats(0, 590), st.floats(0.2, 20)), max_size=40),
    st.floats(20, 120),
)
def test_chunks_tile_the_input_and_respect_the_limit(raw, max_chunk):
    speech = spans(*[(a, min(a + d, 600.0)) for a, d in raw])
    plan = plan_chunks(speech, 600.0, max_chunk=max_chunk)
    assert plan.chunks[0].start == 0.0 and plan.chunks[-1].end == 600.0
    for prev, nxt in zip(plan.chunks, plan.chunks[1:], strict=False):
        assert prev.end == nxt.start
    assert all(0 < c.duration <= max_chunk + 1e-6 for c in plan.chunks)
    assert [c.index for c in plan.chunks] == list(range(len(plan.chunks)))
    # Each chunk knows its speech; together they hold all of it, overlapping spans counted once.
    on_grid = np.zeros(600 * 100, bool)  # the union of the spans on a 10 ms grid
    for s in speech:
        on_grid[round(s.start * 100) : round(s.end * 100)] = True
    tolerance = 0.01 * (len(speech) + 1) + 1e-3 * len(plan.chunks)
    assert sum(c.vad_speech_seconds for c in plan.chunks) == pytest.approx(on_grid.sum() / 100, abs=tolerance)
    assert all(0 <= c.vad_speech_seconds <= c.duration + 1e-3 for c in plan.chunks)


def test_each_chunk_counts_the_speech_inside_it():
    plan = plan_chunks(spans((0, 10), (12, 20), (25, 40), (41, 70)), 70.0, max_chunk=50)
    # Cut at 24.5 s: 10 + 8 s before it, 15 + 29 s after.
    assert [c.vad_speech_seconds for c in plan.chunks] == [18.0, 44.0]
    assert [c.vad_speech_seconds for c in plan_chunks([], 125.0, max_chunk=60).chunks] == [0.0, 0.0, 0.0]

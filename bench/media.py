"""Long benchmark inputs: two speakers taking turns over music, every line a different sentence.

Up to 10 minutes no line repeats, so the artifact cache (keyed by content) cannot make the input look cheaper than
it is. Longer inputs (the 60-minute memory case) repeat the 10-minute script: their chunks are all new work, but a
repeated line's speech comes from the cache after its first synthesis, which shortens the run, not its memory peak
(assembly holds full-length tracks; synthesis holds one line). Generated once per length and kept in the
benchmark's work directory.
"""

from __future__ import annotations

import random
from pathlib import Path

from pipeline.samples import Sample, make_conversation

VOICES = ("jm_kumo", "jf_nezumi")
_SUBJECTS = (
    "My brother",
    "The old teacher",
    "Our neighbour",
    "A young doctor",
    "The mayor",
    "My best friend",
    "The fisherman",
    "Her grandmother",
    "The new manager",
    "A tired student",
)
_VERBS = ("bought", "painted", "found", "lost", "repaired", "sold", "visited", "described", "remembered", "built")
_OBJECTS = (
    "a small boat",
    "the red house",
    "an old bicycle",
    "the village school",
    "a wooden table",
    "the train station",
    "a blue garden",
    "the city library",
    "a quiet hotel",
    "the morning market",
)
_WHEN = (
    "last summer",
    "on Monday",
    "after the storm",
    "before the holidays",
    "in the spring",
    "every weekend",
    "during the festival",
    "at night",
    "two years ago",
    "this morning",
)


SECONDS_PER_LINE = 4.0  # measured: a line is ~3.3 s spoken by Kokoro + the 0.7 s gap
UNIQUE_SECONDS = 600.0


def script(seconds: float, seed: int = 7) -> tuple[tuple[str, str], ...]:
    """About `seconds` of dialogue, no sentence twice."""
    rng = random.Random(seed)
    sentences = [f"{s} {v} {o} {w}." for s in _SUBJECTS for v in _VERBS for o in _OBJECTS for w in _WHEN]
    rng.shuffle(sentences)
    count = max(2, round(seconds / SECONDS_PER_LINE))
    if count > len(sentences):
        raise ValueError(f"at most {len(sentences)} distinct lines")
    return tuple((VOICES[i % 2], sentences[i]) for i in range(count))


def long_conversation(work: Path, minutes: float) -> Sample:
    path = work / f"conversation-{minutes:g}min.mp4"
    meta = path.with_suffix(".json")
    if path.exists() and meta.exists():
        return Sample.model_validate_json(meta.read_text())
    work.mkdir(parents=True, exist_ok=True)
    seconds = minutes * 60
    repeat = max(1, round(seconds / UNIQUE_SECONDS))
    sample = make_conversation(path, lines=script(seconds / repeat), repeat=repeat)
    meta.write_text(sample.model_dump_json())
    return sample

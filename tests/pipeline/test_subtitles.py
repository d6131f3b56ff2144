from __future__ import annotations

import itertools
from pathlib import Path

import pysubs2
import pytest

from pipeline.subtitles import Cue, cues_from_plan, layout, to_string, wrap_text, write_subtitles
from pipeline.timefit import plan_fit
from pipeline.timeline import LineTiming

CUES = [
    Cue(start=0.5, end=2.25, text="Hola, ¿qué tal?"),
    Cue(start=2.5, end=6.0, text="Esta es una frase bastante larga que no cabe en una sola línea de subtítulos."),
    Cue(start=7.001, end=8.999, text="Adiós.", speaker="SPEAKER_01"),
]


@pytest.mark.parametrize("suffix", [".srt", ".vtt"])
def test_files_parse_back_with_exact_times(tmp_path: Path, suffix: str):
    path = write_subtitles(CUES, tmp_path / f"clip.es{suffix}")
    text = path.read_text(encoding="utf-8")
    assert text.startswith("WEBVTT") == (suffix == ".vtt")
    events = pysubs2.load(str(path)).events
    assert [(e.start, e.end) for e in events] == [(500, 2250), (2500, 6000), (7001, 8999)]
    assert events[0].plaintext == "Hola, ¿qué tal?"
    assert events[1].plaintext.split("\n") == [
        "Esta es una frase bastante larga que no",
        "cabe en una sola línea de subtítulos.",
    ]


def test_wrapping_balances_two_lines_and_splits_longer_text():
    assert wrap_text("short line") == ["short line"]
    two = wrap_text("one two three four five six seven eight nine ten eleven")
    assert len(two) == 1 and all(len(line) <= 42 for line in two[0].split("\n"))
    assert abs(len(two[0].split("\n")[0]) - len(two[0].split("\n")[1])) <= 6  # balanced, not 42 + 12
    long = " ".join(["palabra"] * 40)  # ~320 characters: 4 screens of 2 lines
    screens = wrap_text(long)
    assert len(screens) >= 4
    assert all(len(s.split("\n")) <= 2 and max(map(len, s.split("\n"))) <= 42 for s in screens)


def test_long_cue_is_split_in_time_by_characters():
    cue = Cue(start=10.0, end=20.0, text=" ".join(["palabra"] * 24))
    parts = layout([cue])
    assert len(parts) > 1
    assert parts[0].start == 10.0 and parts[-1].end == 20.0
    for a, b in itertools.pairwise(parts):
        assert a.end == pytest.approx(b.start)
    total = sum(len(p.text) for p in parts)
    assert parts[0].duration == pytest.approx(10.0 * len(parts[0].text.replace("\n", " ")) / total, rel=0.1)


def test_vtt_escapes_markup_and_speakers_are_optional():
    cue = [Cue(start=0, end=1, text="a <b> & {c}", speaker="ANA")]
    vtt = to_string(cue, "vtt")
    assert "a &lt;b&gt; &amp; (c)" in vtt
    assert "ANA: a <b> & (c)" in to_string(cue, "srt", label_speakers=True)
    assert "ANA" not in to_string(cue, "srt")


def test_cues_follow_the_fit_plan():
    plan = plan_fit(
        [
            LineTiming(segment_id=0, start=1.0, end=2.0, synth_duration=3.0),  # forces a slowdown
            LineTiming(segment_id=1, start=3.0, end=4.0, synth_duration=0.5),
        ],
        media_duration=5.0,
    )
    cues = cues_from_plan(plan, {0: "uno", 1: "dos"}, {1: "B"})
    assert [(c.start, c.end, c.text, c.speaker) for c in cues] == [
        (1.0, pytest.approx(3.4), "uno", None),
        (pytest.approx(3.4), pytest.approx(3.9), "dos", "B"),
    ]


def test_bad_suffix(tmp_path: Path):
    with pytest.raises(ValueError, match=r"\.srt or \.vtt"):
        write_subtitles(CUES, tmp_path / "x.ass")

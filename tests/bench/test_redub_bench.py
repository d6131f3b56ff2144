import pytest

from bench.redub_bench import RedubTiming, edits, report
from pipeline.records import DubbedLine
from pipeline.timeline import LineFit, VideoSlowdown


def line(segment_id: int, text: str, slowed: bool = False) -> DubbedLine:
    slowdown = VideoSlowdown(start=0.0, end=1.0, output_duration=1.5) if slowed else None
    fit = LineFit(segment_id=segment_id, start=0.0, end=1.0, source_start=0.0, source_end=1.0, speed=1.0,
                  slowdown=slowdown)  # fmt: skip
    return DubbedLine(segment_id=segment_id, speaker="A", text=text, voice="v", audio_key="k", synth_duration=1.0,
                      fit=fit)  # fmt: skip


def test_edits_halve_lines_that_slowed_nothing_and_make_one_too_long():
    lines = [line(i, f"uno dos tres cuatro cinco seis {i}", slowed=i % 3 == 0) for i in range(12)]
    lines.append(line(12, "muy corta"))
    chosen = edits(lines, 2)
    assert [kind for kind, _, _ in chosen] == ["half the words", "half the words", "said three times"]
    assert all(not picked.fit.slowdown and len(picked.text.split()) >= 4 for _, picked, _ in chosen)
    assert len({picked.segment_id for _, picked, _ in chosen}) == 3  # spread over the dub, never the same line
    text = chosen[0][2]
    assert text == "uno dos tres"  # 7 words -> the first 3
    _, last, text = chosen[-1]
    assert text == " ".join([last.text] * 3)


def test_too_few_lines_to_edit_is_said():
    with pytest.raises(RuntimeError, match="only 1 lines"):
        edits([line(0, "uno dos tres cuatro"), line(1, "uno dos tres cuatro", slowed=True)], 1)


def test_report_separates_kept_and_re_encoded_pictures():
    results = [
        RedubTiming("half the words", 3, 14.0, 49, 49, retimed=False),
        RedubTiming("half the words", 7, 12.0, 49, 49, retimed=False),
        RedubTiming("half the words", 9, 20.0, 49, 49, retimed=False),
        RedubTiming("said three times", 11, 30.0, 49, 50, retimed=True),
    ]
    text = report(results, 10.0)
    assert "| said three times | 11 | 30.0 s | 49 → 50 | changed |" in text
    assert "| half the words | 3 | 14.0 s | 49 → 49 | kept |" in text
    assert "slow-downs unchanged: 14.0 s (median of 3" in text
    assert "adds a slow-down: 30.0 s" in text

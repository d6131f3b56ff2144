from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from octavia.audio import AudioClip
from pipeline.timefit import plan_fit, stretch, stretch_many
from pipeline.timeline import FitPlan, LineTiming
from tests.factories import tone

TOL = 1e-6


def line(i: int, start: float, end: float, synth: float) -> LineTiming:
    return LineTiming(segment_id=i, start=start, end=end, synth_duration=synth)


def test_fitting_line_keeps_its_speed_and_may_end_early():
    plan = plan_fit([line(0, 1.0, 3.0, 1.5)], media_duration=5.0)
    (fit,) = plan.lines
    assert fit.speed == 1.0 and (fit.start, fit.end) == (1.0, 2.5)
    assert fit.borrowed_silence == 0 and fit.slowdown is None
    assert plan.duration == 5.0 and not plan.has_slowdown


def test_long_line_speeds_up_just_enough():
    (fit,) = plan_fit([line(0, 1.0, 3.0, 2.2)], media_duration=5.0).lines
    assert fit.speed == pytest.approx(1.1)
    assert fit.end == pytest.approx(3.0)


def test_speedup_capped_then_borrows_silence():
    plan = plan_fit([line(0, 1.0, 3.0, 3.0), line(1, 4.0, 5.0, 0.5)], media_duration=6.0)
    first = plan.lines[0]
    assert first.speed == 1.25
    assert first.end == pytest.approx(1.0 + 3.0 / 1.25)  # 3.4: into the pause before line 1
    assert first.borrowed_silence == pytest.approx(0.4)
    assert plan.lines[1].start == 4.0 and plan.duration == 6.0


def test_custom_cap():
    (fit,) = plan_fit([line(0, 0.0, 2.0, 3.0)], media_duration=10.0, max_speedup=1.5).lines
    assert fit.speed == 1.5 and fit.end == pytest.approx(2.0)


def test_no_silence_left_slows_the_video_and_shifts_later_lines():
    plan = plan_fit([line(0, 1.0, 3.0, 5.0), line(1, 3.5, 4.5, 1.0)], media_duration=6.0)
    first, second = plan.lines
    # 5 s at 1.25x = 4 s needed; 2.5 s available (1.0 -> 3.5): the video span plays 1.6x slower.
    assert first.speed == 1.25 and first.borrowed_silence == pytest.approx(0.5)
    assert first.slowdown is not None
    assert (first.slowdown.start, first.slowdown.end) == (1.0, 3.5)
    assert first.slowdown.factor == pytest.approx(4.0 / 2.5)
    assert first.end == pytest.approx(5.0)
    assert second.start == pytest.approx(3.5 + 1.5) and second.source_start == 3.5
    assert plan.duration == pytest.approx(7.5)
    assert plan.slowdowns == (first.slowdown,)
    assert plan.to_output_time(1.0) == 1.0
    assert plan.to_output_time(3.5) == pytest.approx(5.0)
    assert plan.to_output_time(6.0) == pytest.approx(7.5)


def test_last_line_borrows_up_to_media_end():
    plan = plan_fit([line(0, 8.0, 9.0, 2.5)], media_duration=10.0)
    fit = plan.lines[0]  # 2.5 s at 1.25x = 2 s: exactly up to the end
    assert fit.slowdown is None and fit.borrowed_silence == pytest.approx(1.0) and plan.duration == 10.0
    plan = plan_fit([line(0, 8.0, 9.0, 3.0)], media_duration=10.0)
    fit = plan.lines[0]
    assert fit.slowdown is not None and (fit.slowdown.start, fit.slowdown.end) == (8.0, 10.0)
    assert plan.duration == pytest.approx(10.4)


def test_overlapping_source_lines_are_laid_one_after_another():
    plan = plan_fit([line(0, 1.0, 3.0, 1.0), line(1, 2.0, 4.0, 1.5)], media_duration=5.0)
    assert plan.lines[0].source_end == 2.0  # slot cut at the next line's start
    assert plan.lines[0].end <= plan.lines[1].start


def test_same_start_becomes_a_freeze():
    plan = plan_fit([line(0, 1.0, 2.0, 1.0), line(1, 1.0, 2.0, 1.0)], media_duration=3.0)
    freeze = plan.lines[0].slowdown
    assert freeze is not None and freeze.duration == 0 and math.isinf(freeze.factor)
    assert plan.lines[0].end == pytest.approx(plan.lines[1].start)
    assert plan.duration == pytest.approx(3.0 + 1.0 / 1.25)


def test_input_order_does_not_matter_and_json_round_trip():
    lines = [line(1, 4.0, 5.0, 2.0), line(0, 1.0, 2.0, 0.5)]
    plan = plan_fit(lines, media_duration=6.0)
    assert [f.segment_id for f in plan.lines] == [0, 1]
    assert FitPlan.model_validate_json(plan.model_dump_json()) == plan


def test_bad_arguments():
    with pytest.raises(ValueError, match="max_speedup"):
        plan_fit([], 1.0, max_speedup=0.9)
    with pytest.raises(ValueError, match="media_duration"):
        plan_fit([], -1.0)


@st.composite
def timelines(draw):
    media = draw(st.floats(1.0, 60.0))
    n = draw(st.integers(0, 12))
    starts = sorted(draw(st.lists(st.floats(0.0, media), min_size=n, max_size=n)))
    lines = []
    for i, start in enumerate(starts):
        slot = draw(st.floats(0.0, 5.0))
        synth = draw(st.floats(0.0, 8.0))
        lines.append(line(i, start, min(media, start + slot), synth))
    return lines, media, draw(st.sampled_from([1.0, 1.1, 1.25, 1.5]))


@settings(max_examples=150, deadline=None)
@given(timelines())
def test_plan_properties(case):
    lines, media, cap = case
    plan = plan_fit(lines, media, max_speedup=cap)
    assert [f.segment_id for f in plan.lines] == [x.segment_id for x in lines]  # order kept
    for fit, src in zip(plan.lines, lines, strict=True):
        assert 1.0 <= fit.speed <= cap + TOL
        assert fit.end - fit.start == pytest.approx(src.synth_duration / fit.speed, abs=TOL)  # fits its span
        if fit.speed > 1.0:  # only sped up when it did not fit its slot
            assert src.synth_duration > fit.source_end - fit.source_start
    shift = 0.0
    for fit in plan.lines:  # a line moves by exactly what the slowdowns under earlier lines added
        assert fit.start == pytest.approx(fit.source_start + shift, abs=TOL)
        shift += fit.slowdown.added if fit.slowdown else 0.0
    for a, b in zip(plan.lines, plan.lines[1:], strict=False):
        assert a.end <= b.start + TOL  # no overlap
    if not plan.slowdowns:
        assert plan.duration == media
        assert all(f.start == f.source_start for f in plan.lines)
    else:
        assert plan.duration == pytest.approx(media + sum(s.added for s in plan.slowdowns))
    assert all(f.end <= plan.duration + TOL for f in plan.lines)


def _f0(clip: AudioClip) -> float:
    """Frequency of the strongest partial (a pure tone's pitch); librosa.yin would JIT-compile for ~9 s here."""
    x = clip.samples * np.hanning(clip.num_frames)
    spectrum = np.abs(np.fft.rfft(x, n=8 * clip.num_frames))
    return float(np.argmax(spectrum) * clip.sample_rate / (8 * clip.num_frames))


@pytest.mark.parametrize("factor", [1.25, 1.1, 0.8])
def test_stretch_keeps_pitch_and_content(factor: float):
    clip = tone(2.0, 220.0, 22_050)
    out = stretch(clip, factor)
    assert out.num_frames == round(clip.num_frames / factor)
    assert _f0(out) == pytest.approx(220.0, rel=0.02)
    tail = out.samples[-int(0.1 * out.sample_rate) :]
    assert np.sqrt(np.mean(tail**2)) > 0.1  # the tone runs to the end: not padded silence


def test_stretch_raw_vocoder_length_is_exact():
    """The vocoder itself gives input/factor within a few ms (so padding only papers over rounding)."""
    from pipeline.media.ffmpeg import run_ffmpeg

    clip = tone(1.5, 300.0, 16_000)
    raw = ["-f", "f32le", "-ar", "16000", "-ac", "1"]
    proc = run_ffmpeg(
        [*raw, "-i", "pipe:0", "-af", "rubberband=tempo=1.2:transients=mixed", *raw, "pipe:1"],
        what="t",
        stdin=clip.samples.astype("<f4").tobytes(),
    )
    assert len(proc.stdout) // 4 == pytest.approx(clip.num_frames / 1.2, abs=0.005 * 16_000)


def test_stretch_stereo_and_tiny_clips():
    stereo = AudioClip(np.stack([tone(1.0, 220).samples, tone(1.0, 330).samples]), 16_000)
    out = stretch(stereo, 1.25)
    assert out.samples.shape == (2, 12_800)
    assert _f0(AudioClip(out.samples[1], 16_000)) == pytest.approx(330, rel=0.02)
    tiny = AudioClip(np.ones(100, np.float32), 16_000)
    assert stretch(tiny, 1.25).num_frames == 80
    with pytest.raises(ValueError):
        stretch(tiny, 0)


def test_stretch_many_gives_each_clip_what_stretch_alone_gives_it():
    """One ffmpeg process for a batch (rates, channels and factors mixed, quick paths among them) changes no sample."""
    stereo = AudioClip(np.stack([tone(1.2, 220).samples, tone(1.2, 330).samples]), 16_000)
    jobs = [(tone(2.0, 220.0, 24_000), 1.2), (stereo, 0.8), (tone(0.5, 440.0, 24_000), 1.0),
            (AudioClip(np.ones(100, np.float32), 16_000), 1.25), (tone(1.0, 300.0, 48_000), 1.05)]  # fmt: skip
    together = stretch_many(jobs)
    assert [c.num_frames for c in together] == [round(clip.num_frames / f) for clip, f in jobs]
    for (clip, factor), out in zip(jobs, together, strict=True):
        alone = stretch(clip, factor)
        assert out.sample_rate == clip.sample_rate and out.samples.shape == alone.samples.shape
        assert np.array_equal(out.samples, alone.samples)
    assert stretch_many([]) == []

"""Block-wise mixing gives what the whole-track computation gives: the streaming loudness meter agrees with
pyloudnorm, the block-wise limiter and line placement equal their one-block results, and a mix written to a file
block by block equals the in-memory mix."""

from __future__ import annotations

import numpy as np
import pyloudnorm
import pytest

from octavia.audio import AudioClip
from octavia.records import TimeSpan
from pipeline.mix import (
    ArraySink,
    ArraySource,
    LoudnessMeter,
    WavSink,
    WavSource,
    _limit_pass,
    build_dub_track,
    limit,
    mix,
    mix_to_file,
    place_lines,
)
from pipeline.timefit import plan_fit
from pipeline.timeline import LineTiming, VideoSlowdown


def _signal(seconds: float, rate: int, channels: int, seed: int = 3) -> np.ndarray:
    """Noise bursts with silent gaps (exercises both gates) and a few overs above 0 dBFS."""
    rng = np.random.default_rng(seed)
    n = int(seconds * rate)
    x = rng.normal(0, 0.2, (channels, n)).astype(np.float32)
    envelope = (np.sin(2 * np.pi * 0.3 * np.arange(n) / rate) > -0.3).astype(np.float32)
    x *= envelope * np.linspace(0.2, 1.0, n, dtype=np.float32)
    x[:, rng.integers(0, n, 20)] = 1.4
    return x


@pytest.mark.parametrize(("rate", "channels"), [(16_000, 1), (44_100, 2), (48_000, 2)])
def test_streaming_meter_agrees_with_pyloudnorm(rate, channels):
    x = _signal(13.7, rate, channels)
    meter = LoudnessMeter(rate, channels)
    rng = np.random.default_rng(0)
    pos = 0
    while pos < x.shape[1]:  # blocks of awkward sizes, not aligned to the 100 ms steps
        size = int(rng.integers(1, rate))
        meter.add(x[:, pos : pos + size])
        pos += size
    expected = pyloudnorm.Meter(rate).integrated_loudness(x.T.astype(np.float64))
    assert meter.result().lufs == pytest.approx(expected, abs=0.01)
    assert meter.result().peak == pytest.approx(1.4)


def test_meter_says_none_for_silence_and_for_too_short():
    silent = LoudnessMeter(16_000, 1)
    silent.add(np.zeros((1, 16_000)))
    assert silent.result().lufs is None
    short = LoudnessMeter(16_000, 1)
    short.add(np.full((1, 3000), 0.5))
    assert short.result().lufs is None


def test_block_wise_limiter_equals_limiting_the_whole_track():
    rate = 48_000
    x = _signal(7.3, rate, 2) * 1.5
    whole = limit(x, rate, 0.89)
    sink = ArraySink(2, rate)
    _limit_pass(ArraySource(AudioClip(x, rate)), sink, 1.0, 0.89, block=3001)
    assert np.abs(sink.samples() - whole).max() < 1e-6
    assert np.abs(sink.samples()).max() <= 0.89 + 1e-6


@pytest.mark.parametrize("workers", [1, 3])
def test_lines_placed_block_by_block_equal_one_block(workers):
    rate = 24_000
    timings = [LineTiming(segment_id=i, start=1.0 + 2.5 * i, end=3.0 + 2.5 * i, synth_duration=2.3) for i in range(6)]
    plan = plan_fit(timings, 18.0)
    rng = np.random.default_rng(1)
    lines = {i: AudioClip(rng.normal(0, 0.1, int(2.3 * rate)).astype(np.float32), rate) for i in range(6)}
    whole = build_dub_track(plan, lines, sample_rate=rate)
    sink = ArraySink(1, rate)
    place_lines(plan, lines.get, sink, sample_rate=rate, block_seconds=0.77, workers=workers)
    assert np.array_equal(sink.samples()[0], whole.samples)
    assert any(f.speed > 1.0 for f in plan.lines)  # stretched lines are placed the same way too


class _KeptStretches:
    def __init__(self) -> None:
        self.clips: dict[tuple[int, float], AudioClip] = {}

    def get(self, segment_id: int, speed: float) -> AudioClip | None:
        return self.clips.get((segment_id, speed))

    def put(self, segment_id: int, speed: float, clip: AudioClip) -> None:
        self.clips[(segment_id, speed)] = clip


def test_kept_stretches_are_placed_without_stretching_the_lines_again():
    rate = 24_000
    lengths = [2.3, 1.5, 2.4, 1.2, 2.2, 1.9]  # in 2 s slots: every other line is sped up
    timings = [LineTiming(segment_id=i, start=1.0 + 2.5 * i, end=3.0 + 2.5 * i, synth_duration=n)
               for i, n in enumerate(lengths)]  # fmt: skip
    plan = plan_fit(timings, 18.0)
    rng = np.random.default_rng(2)
    lines = {i: AudioClip(rng.normal(0, 0.1, int(n * rate)).astype(np.float32), rate) for i, n in enumerate(lengths)}
    sped = {f.segment_id for f in plan.lines if f.speed > 1.0}
    assert sped == {0, 2, 4}
    kept = _KeptStretches()
    first = ArraySink(1, rate)
    place_lines(plan, lines.get, first, sample_rate=rate, workers=2, stretched=kept)
    assert {sid for sid, _ in kept.clips} == sped  # lines at their own speed are not worth keeping
    asked: list[int] = []

    def line_audio(segment_id: int) -> AudioClip | None:
        asked.append(segment_id)
        return lines.get(segment_id)

    second = ArraySink(1, rate)
    place_lines(plan, line_audio, second, sample_rate=rate, workers=2, stretched=kept)
    assert sorted(asked) == [1, 3, 5]  # the sped-up lines came as they were kept
    assert np.array_equal(second.samples(), first.samples())
    assert np.array_equal(first.samples()[0], build_dub_track(plan, lines, sample_rate=rate).samples)


def test_a_line_without_audio_fails_the_placement_with_several_workers():
    rate = 24_000
    timings = [LineTiming(segment_id=i, start=1.0 + 2.5 * i, end=3.0 + 2.5 * i, synth_duration=2.3) for i in range(6)]
    plan = plan_fit(timings, 18.0)
    lines = {i: AudioClip(np.zeros(int(2.3 * rate), np.float32), rate) for i in range(6) if i != 4}
    with pytest.raises(ValueError, match="no audio for segment 4"):
        place_lines(plan, lines.get, ArraySink(1, rate), sample_rate=rate, workers=3)


def test_mix_to_file_equals_the_in_memory_mix(tmp_path):
    rate = 48_000
    rng = np.random.default_rng(2)
    dub = np.zeros(int(20 * rate), np.float32)
    speech = [TimeSpan(start=1.0 + 4 * i, end=3.2 + 4 * i) for i in range(5)]
    for span in speech:
        a, b = int(span.start * rate), int(span.end * rate)
        dub[a:b] = rng.normal(0, 0.15, b - a)
    bed = _signal(21.0, rate, 2, seed=5) * 0.3
    expected = mix(AudioClip(dub, rate), AudioClip(bed, rate), speech=speech, ducking="cinematic")

    with WavSink(tmp_path / "dub.wav", rate, 1) as sink:
        sink.write(dub[None, :])
    with WavSink(tmp_path / "bed.wav", rate, 2) as sink:
        sink.write(bed)
    out = tmp_path / "mix.wav"
    mix_to_file(WavSource(tmp_path / "dub.wav"), WavSource(tmp_path / "bed.wav"), out, speech=speech,
                ducking="cinematic", scratch_dir=tmp_path)  # fmt: skip
    got = AudioClip.read(str(out), mono=False)
    assert got.sample_rate == rate and got.samples.shape == expected.samples.shape
    assert np.abs(got.samples - expected.samples).max() < 1e-4  # 16-bit output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bed.wav", "dub.wav", "mix.wav"]  # passes removed


def test_retime_block_by_block_equals_one_block():
    from pipeline.mix import retime, retime_blocks
    from pipeline.timeline import LineTiming

    rate = 16_000
    timings = [LineTiming(segment_id=0, start=1.0, end=2.0, synth_duration=4.0),
               LineTiming(segment_id=1, start=2.6, end=3.6, synth_duration=1.0)]  # fmt: skip
    plan = plan_fit(timings, 6.0, max_speedup=1.1)
    assert plan.slowdowns
    x = _signal(6.0, rate, 2)
    whole = retime(AudioClip(x, rate), plan)
    sink = ArraySink(2, rate)
    retime_blocks(ArraySource(AudioClip(x, rate)), plan, sink, block_seconds=0.3)
    assert np.array_equal(sink.samples(), whole.samples)
    assert whole.samples.shape[1] == round(plan.duration * rate)


def test_retime_on_several_workers_equals_one_worker():
    """Slowed spans stretched on threads are written in timeline order, each where one worker would put it."""
    from pipeline.mix import retime_blocks
    from pipeline.timeline import LineTiming

    rate = 16_000
    timings = [LineTiming(segment_id=i, start=0.5 + 1.5 * i, end=1.5 + 1.5 * i, synth_duration=1.6 + 0.2 * i)
               for i in range(5)]  # fmt: skip
    plan = plan_fit(timings, 8.5, max_speedup=1.1)
    assert len(plan.slowdowns) >= 4
    source = ArraySource(AudioClip(_signal(8.5, rate, 2), rate))
    one, several = ArraySink(2, rate), ArraySink(2, rate)
    retime_blocks(source, plan, one, block_seconds=0.4)
    retime_blocks(source, plan, several, block_seconds=0.4, workers=3)
    assert several.samples().shape[1] == round(plan.duration * rate)
    assert np.array_equal(several.samples(), one.samples())


class _KeptSpans:
    def __init__(self) -> None:
        self.clips: dict[tuple[float, float, float], AudioClip] = {}

    def get(self, slowdown: VideoSlowdown) -> AudioClip | None:
        return self.clips.get((slowdown.start, slowdown.end, slowdown.output_duration))

    def put(self, slowdown: VideoSlowdown, clip: AudioClip) -> None:
        self.clips[(slowdown.start, slowdown.end, slowdown.output_duration)] = clip


def test_kept_spans_are_retimed_without_stretching_them_again(monkeypatch):
    import pipeline.mix
    from pipeline.mix import retime_blocks
    from pipeline.timeline import LineTiming

    rate = 16_000
    timings = [LineTiming(segment_id=i, start=0.5 + 1.5 * i, end=1.5 + 1.5 * i, synth_duration=1.6 + 0.2 * i)
               for i in range(5)]  # fmt: skip
    plan = plan_fit(timings, 8.5, max_speedup=1.1)
    source = ArraySource(AudioClip(_signal(8.5, rate, 2), rate))
    kept = _KeptSpans()
    first, second = ArraySink(2, rate), ArraySink(2, rate)
    retime_blocks(source, plan, first, block_seconds=0.4, workers=2, stretched=kept)
    assert len(kept.clips) == len(plan.slowdowns) >= 4

    stretched: list[int] = []
    real = pipeline.mix.stretch_many

    def counting(jobs):  # type: ignore[no-untyped-def]
        stretched.append(len(jobs))
        return real(jobs)

    monkeypatch.setattr(pipeline.mix, "stretch_many", counting)
    retime_blocks(source, plan, second, block_seconds=0.4, workers=2, stretched=kept)
    assert sum(stretched) == 0
    assert np.array_equal(second.samples(), first.samples())

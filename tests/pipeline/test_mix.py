from __future__ import annotations

import numpy as np
import pytest

from octavia.audio import AudioClip
from octavia.records import TimeSpan
from pipeline.mix import DUCKING_PRESETS, build_dub_track, detect_speech, loudness, mix, retime
from pipeline.timefit import plan_fit
from pipeline.timeline import LineTiming
from tests.factories import tone

SR = 16_000


def _amplitude(samples: np.ndarray, freq: float, sr: int = SR) -> float:
    """Amplitude of one sinusoid in `samples` (exact for whole-cycle windows)."""
    t = np.arange(samples.shape[-1]) / sr
    x = samples if samples.ndim == 1 else samples.mean(axis=0)
    return float(2 * np.abs(np.mean(x * np.exp(-2j * np.pi * freq * t))))


def _db(x: float) -> float:
    return 20 * np.log10(x)


def _speechy(seconds: float, freq: float = 300.0, sr: int = SR) -> AudioClip:
    """A tone with a syllable-rate envelope: loud and peaky like speech."""
    clip = tone(seconds, freq, sr, amplitude=0.5)
    t = np.arange(clip.num_frames) / sr
    return AudioClip((clip.samples * (0.55 + 0.45 * np.sin(2 * np.pi * 4 * t))).astype(np.float32), sr)


def test_build_dub_track_places_and_speeds_lines():
    lines = {0: _speechy(1.0), 1: _speechy(2.5)}
    timings = [
        LineTiming(segment_id=0, start=0.5, end=2.0, synth_duration=1.0),
        LineTiming(segment_id=1, start=3.0, end=5.0, synth_duration=2.5),
    ]
    plan = plan_fit(timings, media_duration=6.0)
    track = build_dub_track(plan, lines, sample_rate=SR)
    assert track.num_frames == 6 * SR
    spans = detect_speech(track)
    assert [(round(s.start, 2), round(s.end, 2)) for s in spans] == [(0.5, 1.5), (3.0, 5.0)]  # 2.5 s at 1.25x
    assert _amplitude(track.samples[int(3.2 * SR) : int(4.8 * SR)], 300) > 0.1  # pitch kept after speed-up


def test_build_dub_track_needs_every_line():
    plan = plan_fit([LineTiming(segment_id=7, start=0, end=1, synth_duration=0.5)], media_duration=2.0)
    with pytest.raises(ValueError, match="segment 7"):
        build_dub_track(plan, {}, sample_rate=SR)


@pytest.mark.parametrize("target", [-16.0, -23.0])
def test_mix_hits_target_loudness_without_clipping(target: float):
    rng = np.random.default_rng(0)
    dub = np.zeros(8 * SR, np.float32)
    dub[SR : 3 * SR] = _speechy(2.0).samples
    dub[5 * SR : 7 * SR] = _speechy(2.0).samples
    # A hot background with sharp clicks: normalising up to -16 LUFS pushes the clicks far over -1 dBFS.
    bed = 0.05 * rng.standard_normal((2, 8 * SR)).astype(np.float32)
    bed[:, ::4000] = 0.99
    out = mix(AudioClip(dub, SR), AudioClip(bed, SR), target_lufs=target)
    assert out.channels == 2 and out.num_frames == 8 * SR
    assert loudness(out.samples, SR) == pytest.approx(target, abs=0.5)
    assert _db(np.abs(out.samples).max()) <= -1.0 + 1e-4


@pytest.mark.parametrize("preset", sorted(DUCKING_PRESETS))
def test_background_ducks_by_the_preset_depth(preset: str):
    bed = tone(8.0, 1000.0, SR, amplitude=0.1)
    dub = np.zeros(8 * SR, np.float32)
    dub[2 * SR : 4 * SR] = tone(2.0, 300.0, SR, amplitude=0.3).samples
    speech = [TimeSpan(start=2.0, end=4.0)]
    out = mix(AudioClip(dub, SR), bed, speech=speech, ducking=preset).samples
    under = _amplitude(out[int(2.5 * SR) : int(3.5 * SR)], 1000.0)
    between = _amplitude(out[int(6.5 * SR) : int(7.5 * SR)], 1000.0)
    assert _db(between) - _db(under) == pytest.approx(DUCKING_PRESETS[preset].depth_db, abs=0.5)
    # smooth: no step in the background gain larger than a fraction of a dB per millisecond
    envelope = np.abs(out[: 2 * SR])  # before speech: only the (ramping) background
    assert np.all(np.diff(envelope.reshape(-1, 16).max(axis=1)) < 0.01)


def test_ducking_anticipates_speech():
    bed = tone(4.0, 1000.0, SR, amplitude=0.1)
    dub = np.zeros(4 * SR, np.float32)
    dub[2 * SR : 3 * SR] = tone(1.0, 300.0, SR, amplitude=0.3).samples
    out = mix(AudioClip(dub, SR), bed, speech=[TimeSpan(start=2.0, end=3.0)], ducking="standard").samples
    at_onset = _amplitude(out[int(1.99 * SR) : int(2.0 * SR)], 1000.0)
    before = _amplitude(out[int(1.0 * SR) : int(1.5 * SR)], 1000.0)
    assert _db(before) - _db(at_onset) > 10  # already down when the first word starts


def test_dub_level_follows_voice_reference():
    dub = tone(4.0, 300.0, SR, amplitude=0.5)
    bed = tone(4.0, 1000.0, SR, amplitude=0.05)
    reference = tone(4.0, 300.0, SR, amplitude=0.05)  # original voice 20 dB quieter than the dub
    out = mix(dub, bed, speech=[], voice_reference=reference).samples
    voice_gain = _amplitude(out, 300.0) / 0.5
    bed_gain = _amplitude(out, 1000.0) / 0.05
    assert _db(voice_gain) - _db(bed_gain) == pytest.approx(-20.0, abs=0.3)


def test_dub_stays_above_background_without_reference():
    dub = tone(4.0, 300.0, SR, amplitude=0.05)
    bed = tone(4.0, 1000.0, SR, amplitude=0.5)  # a loud bed: the dub is lifted to 8 LU over it
    out = mix(dub, bed, speech=[]).samples
    voice_out = dub.samples * _amplitude(out, 300.0) / 0.05
    bed_out = bed.samples * _amplitude(out, 1000.0) / 0.5
    assert loudness(voice_out, SR) - loudness(bed_out, SR) == pytest.approx(8.0, abs=0.3)


def test_mix_formats_and_silence():
    dub = AudioClip(np.zeros(SR * 2, np.float32), 22_050)
    bed = AudioClip(np.zeros((2, 48_000 * 2), np.float32), 48_000)
    out = mix(dub, bed)
    assert (out.sample_rate, out.channels) == (48_000, 2)
    assert out.num_frames == pytest.approx(int(2 * SR / 22_050 * 48_000), abs=2)
    assert not np.any(out.samples)  # silence stays silence (no NaN from normalising -inf LUFS)
    speech_free = mix(AudioClip(np.zeros(3 * SR, np.float32), SR), tone(3.0, 440.0, SR, amplitude=0.01))
    assert loudness(speech_free.samples, SR) == pytest.approx(-16.0, abs=0.5)
    with pytest.raises(ValueError, match="ducking preset"):
        mix(dub, bed, ducking="loud")


def test_retime_stretches_slowed_spans_only():
    plan = plan_fit([LineTiming(segment_id=0, start=1.0, end=2.0, synth_duration=3.0)], media_duration=3.0)
    assert plan.slowdowns and plan.duration == pytest.approx(3.4)  # 3 s at 1.25x = 2.4 s in a 2 s window
    bed = tone(3.0, 440.0, SR, amplitude=0.2)
    out = retime(bed, plan)
    assert out.num_frames == round(3.4 * SR)
    assert _amplitude(out.samples[int(0.1 * SR) : int(0.9 * SR)], 440.0) == pytest.approx(0.2, rel=0.05)
    assert _amplitude(out.samples[int(1.5 * SR) : int(3.0 * SR)], 440.0) == pytest.approx(0.2, rel=0.15)
    assert retime(bed, plan_fit([], 3.0)).num_frames == 3 * SR


def test_retime_freeze_inserts_silence():
    # two lines at the same instant: the second waits, the picture holds, the background pauses
    timings = [LineTiming(segment_id=i, start=1.0, end=2.0, synth_duration=1.0) for i in (0, 1)]
    plan = plan_fit(timings, media_duration=3.0)
    assert plan.slowdowns[0].duration == 0 and plan.duration == pytest.approx(3.8)
    out = retime(tone(3.0, 440.0, SR, amplitude=0.2), plan).samples
    assert out.size == round(3.8 * SR)
    assert np.abs(out[int(1.05 * SR) : int(1.75 * SR)]).max() == 0.0  # the inserted 0.8 s
    assert _amplitude(out[int(2.0 * SR) : int(3.0 * SR)], 440.0) == pytest.approx(0.2, rel=0.05)

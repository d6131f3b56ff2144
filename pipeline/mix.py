"""Assemble the dub: place line clips by the fit plan, lay them over the background with ducking, normalise.

Levels, in order:
1. the dub track is levelled to the original voice's loudness when a reference is given, else to at least
   `SPEECH_OVER_BACKGROUND_LU` above the background (and at least the target);
2. the background is ducked under speech by the preset's gains, with raised-cosine ramps that start *before*
   each line (we know when speech comes, so there is no need to react late like a sidechain compressor);
3. the sum is normalised to `target_lufs` integrated loudness (ITU-R BS.1770, pyloudnorm), then a look-ahead
   limiter keeps every sample peak at or under `peak_dbfs`.

Typical use, all on the output timeline of a `FitPlan`:

    dub = build_dub_track(plan, clips_by_segment_id, sample_rate=bg.sample_rate)
    final = mix(dub, retime(bg, plan), speech=plan.speech_spans(), ducking="standard", voice_reference=vocals)
    final.write("clip.es.wav")
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from octavia.audio import AudioClip
from octavia.records import TimeSpan
from pipeline.timefit import stretch
from pipeline.timeline import FitPlan


@dataclass(frozen=True)
class DuckingPreset:
    name: str
    under_speech_db: float  # background gain while dubbed speech plays
    between_speech_db: float  # background gain between lines
    attack: float  # seconds to duck, ending when speech starts
    release: float  # seconds to come back, starting when speech ends
    hold: float  # pauses shorter than this stay ducked (no pumping between close lines)

    @property
    def depth_db(self) -> float:
        return self.between_speech_db - self.under_speech_db


# The one table of ducking numbers. cinematic lifts the background between lines for a fuller, film-like bed.
DUCKING_PRESETS: dict[str, DuckingPreset] = {
    p.name: p
    for p in (
        DuckingPreset("soft", under_speech_db=-6.0, between_speech_db=0.0, attack=0.20, release=0.60, hold=0.5),
        DuckingPreset("standard", under_speech_db=-12.0, between_speech_db=0.0, attack=0.10, release=0.40, hold=0.4),
        DuckingPreset("cinematic", under_speech_db=-15.0, between_speech_db=3.0, attack=0.30, release=1.00, hold=0.8),
    )
}

DEFAULT_TARGET_LUFS = -16.0
DEFAULT_PEAK_DBFS = -1.0
SPEECH_OVER_BACKGROUND_LU = 8.0
_LIMITER_LOOKAHEAD = 0.005  # seconds
_MIN_STRETCHABLE = 0.05  # seconds; shorter slowed spans are padded with silence


def build_dub_track(plan: FitPlan, lines: Mapping[int, AudioClip], *, sample_rate: int, channels: int = 1) -> AudioClip:
    """Every line's speech, sped up by its planned factor, at its planned place: one track `plan.duration` long."""
    total = round(plan.duration * sample_rate)
    track = np.zeros((channels, total), np.float32)
    for fit in plan.lines:
        if fit.segment_id not in lines:
            raise ValueError(f"no audio for segment {fit.segment_id}; the plan and the synthesized lines disagree")
        clip = conform(lines[fit.segment_id], sample_rate, channels)
        if fit.speed != 1.0:
            clip = stretch(clip, fit.speed)
        a = round(fit.start * sample_rate)
        n = min(round((fit.end - fit.start) * sample_rate), clip.num_frames, total - a)
        if n > 0:
            track[:, a : a + n] += clip.samples.reshape(channels, -1)[:, :n]
    return AudioClip(track[0] if channels == 1 else track, sample_rate)


def retime(clip: AudioClip, plan: FitPlan) -> AudioClip:
    """Move source-timed audio (background, original track) onto the output timeline: slowed spans are stretched
    with pitch kept; spans too short or too slowed to stretch play as they are, then silence fills the rest
    (freezes: only silence). The result is `plan.duration` long."""
    sr = clip.sample_rate
    source = _fit_frames(clip.samples, round(plan.source_duration * sr))
    if not plan.slowdowns:
        return AudioClip(source, sr)
    pieces: list[np.ndarray] = []
    cursor = 0
    for s in plan.slowdowns:
        a, b = round(s.start * sr), round(s.end * sr)
        pieces.append(source[..., cursor:a])
        span = AudioClip(np.ascontiguousarray(source[..., a:b]), sr)
        out_frames = round(s.output_duration * sr)
        if span.duration >= _MIN_STRETCHABLE and s.factor <= 4.0:
            pieces.append(_fit_frames(stretch(span, 1.0 / s.factor).samples, out_frames))
        else:
            pieces.append(_fit_frames(_faded(span.samples, sr), out_frames))
        cursor = b
    pieces.append(source[..., cursor:])
    return AudioClip(_fit_frames(np.concatenate(pieces, axis=-1), round(plan.duration * sr)), sr)


def ducking_gain(
    num_frames: int, sample_rate: int, speech: Sequence[TimeSpan], preset: DuckingPreset | str = "standard"
) -> np.ndarray:
    """Per-sample linear gain for the background: between-speech level, dipping to the under-speech level."""
    preset = _preset(preset)
    amount = np.zeros(num_frames, np.float32)  # 0 = between speech, 1 = fully ducked
    for start, end in _merge(speech, preset.hold):
        a, b = round(start * sample_rate), round(end * sample_rate)
        amount[max(0, a) : max(0, b)] = 1.0
        _ramp_into(amount, a, round(preset.attack * sample_rate), rising=True)
        _ramp_into(amount, b, round(preset.release * sample_rate), rising=False)
    gain_db = preset.between_speech_db + amount * (preset.under_speech_db - preset.between_speech_db)
    return np.power(10.0, gain_db / 20.0).astype(np.float32)


def mix(
    dub: AudioClip,
    background: AudioClip | None = None,
    *,
    speech: Sequence[TimeSpan] | None = None,
    ducking: DuckingPreset | str = "standard",
    target_lufs: float = DEFAULT_TARGET_LUFS,
    peak_dbfs: float = DEFAULT_PEAK_DBFS,
    voice_reference: AudioClip | None = None,
) -> AudioClip:
    """The dub over the (ducked) background, at `target_lufs` with peaks <= `peak_dbfs`.

    The result has the dub's length and the background's sample rate (the dub's without one), stereo if either
    is. `speech` are the spans the background ducks under (`FitPlan.speech_spans()`); by default they are found
    in the dub itself. `voice_reference` (e.g. the separated original vocals) sets the dub's level.
    """
    preset = _preset(ducking)
    if peak_dbfs > 0:
        raise ValueError(f"peak_dbfs must be <= 0, got {peak_dbfs}")
    sr = background.sample_rate if background is not None else dub.sample_rate
    channels = max(dub.channels, background.channels if background is not None else 1)
    voice = conform(dub, sr, channels).samples.reshape(channels, -1)
    n = voice.shape[1]

    voice_lufs = loudness(voice, sr)
    if voice_lufs is not None:
        want = loudness(conform(voice_reference, sr, channels).samples, sr) if voice_reference is not None else None
        if want is None:
            want = target_lufs
            if background is not None:
                bed_lufs = loudness(conform(background, sr, channels).samples, sr)
                if bed_lufs is not None:
                    want = max(target_lufs, bed_lufs + SPEECH_OVER_BACKGROUND_LU)
        voice = voice * _db(want - voice_lufs)

    out = voice.astype(np.float32)
    if background is not None:
        bed = _fit_frames(conform(background, sr, channels).samples.reshape(channels, -1), n)
        spans = speech if speech is not None else detect_speech(AudioClip(voice[0], sr))
        out = out + bed * ducking_gain(n, sr, spans, preset)[None, :]

    out = normalize(out, sr, target_lufs=target_lufs, peak_dbfs=peak_dbfs)
    return AudioClip(out[0] if channels == 1 else out, sr)


def normalize(samples: np.ndarray, sample_rate: int, *, target_lufs: float, peak_dbfs: float) -> np.ndarray:
    """Gain to `target_lufs`, then limit peaks to `peak_dbfs`; repeated (at most 3x) to win back the loudness the
    limiter took. The limiter runs last, so the peak bound always holds. Silence is returned unchanged."""
    out = samples.astype(np.float32).reshape(-1, samples.shape[-1])
    ceiling = float(_db(peak_dbfs))
    for _ in range(3):
        current = loudness(out, sample_rate)
        if current is None or abs(current - target_lufs) < 0.1:
            break
        out = limit(out * _db(target_lufs - current), sample_rate, ceiling)
    if np.abs(out).max(initial=0.0) > ceiling:  # too short to measure, or already at target but too hot
        out = limit(out, sample_rate, ceiling)
    return out.reshape(samples.shape).astype(np.float32)


def limit(samples: np.ndarray, sample_rate: int, ceiling: float) -> np.ndarray:
    """Look-ahead peak limiter: the gain dips smoothly around each over, so the waveform is not clipped."""
    from scipy.ndimage import minimum_filter1d, uniform_filter1d

    x = samples.reshape(-1, samples.shape[-1])
    peak = np.abs(x).max(axis=0)
    needed = np.minimum(1.0, ceiling / np.maximum(peak, 1e-12))
    if needed.min() >= 1.0:
        return samples
    width = max(1, int(_LIMITER_LOOKAHEAD * sample_rate))
    # min over ±width then average over ±width/2: at each over the gain is <= what that sample needs.
    gain = minimum_filter1d(needed, size=2 * width + 1, mode="nearest")
    gain = uniform_filter1d(gain, size=width | 1, mode="nearest")
    out = np.clip(x * gain[None, :], -ceiling, ceiling)  # clip only guards float rounding
    return out.reshape(samples.shape).astype(np.float32)


def loudness(samples: np.ndarray, sample_rate: int) -> float | None:
    """Integrated loudness in LUFS; None for silence or audio shorter than one 400 ms gating block."""
    import pyloudnorm

    x = samples.reshape(-1, samples.shape[-1]).T.astype(np.float64)
    if x.shape[0] < int(0.4 * sample_rate) + 1:
        return None
    value = pyloudnorm.Meter(sample_rate).integrated_loudness(x)
    return float(value) if np.isfinite(value) else None


def detect_speech(clip: AudioClip, threshold_db: float = -40.0, min_gap: float = 0.2) -> tuple[TimeSpan, ...]:
    """Spans of a dub track louder than `threshold_db` below its peak (used to duck when no plan is given).

    A 20 ms RMS frame threshold: the dub is clean synthesized speech over digital silence, so nothing finer is
    needed (and librosa.effects.split would JIT-compile for seconds on first use).
    """
    y = clip.mono().samples
    hop = max(1, int(0.02 * clip.sample_rate))
    frames = y[: len(y) // hop * hop].reshape(-1, hop)
    if frames.size == 0 or not np.any(frames):
        return ()
    rms = np.sqrt(np.mean(frames.astype(np.float64) ** 2, axis=1))
    active = rms > rms.max() * _db(threshold_db)
    edges = np.flatnonzero(np.diff(np.concatenate([[0], active.astype(np.int8), [0]])))
    spans = [(a * hop / clip.sample_rate, b * hop / clip.sample_rate) for a, b in edges.reshape(-1, 2)]
    return tuple(TimeSpan(start=a, end=b) for a, b in _merge_pairs(spans, min_gap))


def conform(clip: AudioClip, sample_rate: int, channels: int) -> AudioClip:
    """Resample and up/down-mix a clip (mono is copied to both sides; stereo is averaged to mono)."""
    clip = clip.resample(sample_rate)
    if clip.channels == channels:
        return clip
    if channels == 1:
        return clip.mono()
    mono = clip.mono().samples
    return AudioClip(np.tile(mono, (channels, 1)), sample_rate)


def _preset(ducking: DuckingPreset | str) -> DuckingPreset:
    if isinstance(ducking, DuckingPreset):
        return ducking
    try:
        return DUCKING_PRESETS[ducking]
    except KeyError:
        raise ValueError(f"unknown ducking preset {ducking!r}; choose one of {', '.join(DUCKING_PRESETS)}") from None


def _merge(spans: Sequence[TimeSpan], hold: float) -> list[tuple[float, float]]:
    return _merge_pairs([(s.start, s.end) for s in spans], hold)


def _merge_pairs(spans: Sequence[tuple[float, float]], gap: float) -> list[tuple[float, float]]:
    """Join spans separated by at most `gap` seconds."""
    merged: list[tuple[float, float]] = []
    for start, end in sorted(spans):
        if merged and start - merged[-1][1] <= gap:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def _ramp_into(amount: np.ndarray, edge: int, length: int, *, rising: bool) -> None:
    """Raised-cosine ramp of `length` samples ending (rising) or starting (falling) at `edge`; keeps the max."""
    if length <= 0:
        return
    a, b = (edge - length, edge) if rising else (edge, edge + length)
    lo, hi = max(0, a), min(len(amount), b)
    if lo >= hi:
        return
    phase = (np.arange(lo, hi) - a) / length  # 0..1 across the ramp
    ramp = 0.5 - 0.5 * np.cos(np.pi * phase) if rising else 0.5 + 0.5 * np.cos(np.pi * phase)
    np.maximum(amount[lo:hi], ramp.astype(np.float32), out=amount[lo:hi])


def _fit_frames(samples: np.ndarray, frames: int) -> np.ndarray:
    n = samples.shape[-1]
    if n >= frames:
        return samples[..., :frames]
    pad = [(0, 0)] * (samples.ndim - 1) + [(0, frames - n)]
    return np.pad(samples, pad)


def _faded(samples: np.ndarray, sample_rate: int, seconds: float = 0.005) -> np.ndarray:
    """Short fade in and out, so audio next to inserted silence does not click."""
    n = min(samples.shape[-1] // 2, int(seconds * sample_rate))
    if n == 0:
        return samples
    out = samples.copy()
    ramp = np.linspace(0.0, 1.0, n, dtype=np.float32)
    out[..., :n] *= ramp
    out[..., -n:] *= ramp[::-1]
    return out


def _db(value: float) -> float:
    return float(10.0 ** (value / 20.0))

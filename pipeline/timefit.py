"""Make dubbed lines fit the source timing.

`plan_fit` decides, as data and without touching audio, how each line fits:

1. speech that fits its source slot plays at its own speed (never slowed down artificially; it may end early);
2. else it is sped up, pitch preserved, just enough to fit, but at most `max_speedup`;
3. if still too long it runs on into the silence after its slot, up to the next line's start (or the media end);
4. if still too long the video is slowed over that span (slot + silence) so the line fits: the output gets longer
   and every later line shifts by the same amount.

`stretch` then applies a line's speed to its audio.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from octavia.audio import AudioClip
from pipeline.media.ffmpeg import has_filter, run_ffmpeg
from pipeline.timeline import FitPlan, LineFit, LineTiming, VideoSlowdown

DEFAULT_MAX_SPEEDUP = 1.25
_EPS = 1e-9
# Below ~50 ms a phase vocoder has nothing to work with (rubberband returns no samples); pitch is moot there.
_MIN_VOCODER_SECONDS = 0.05


def plan_fit(lines: Sequence[LineTiming], media_duration: float, max_speedup: float = DEFAULT_MAX_SPEEDUP) -> FitPlan:
    """Plan how every line fits. Lines are taken in order of their source start (stable for equal starts).

    A line's slot ends at its own end or the next line's start, whichever is first (overlapping source lines,
    e.g. two speakers at once, are laid one after the other). Times past `media_duration` are clamped to it.
    """
    if media_duration < 0:
        raise ValueError(f"media_duration must be >= 0, got {media_duration}")
    if max_speedup < 1.0:
        raise ValueError(f"max_speedup must be >= 1.0 (1.0 = never speed up), got {max_speedup}")

    ordered = sorted(lines, key=lambda line: line.start)
    starts = [min(line.start, media_duration) for line in ordered]
    fits: list[LineFit] = []
    slowdowns: list[VideoSlowdown] = []
    shift = 0.0  # output time minus source time, grown by every slowdown so far
    for i, line in enumerate(ordered):
        start = starts[i]
        window_end = starts[i + 1] if i + 1 < len(ordered) else media_duration
        slot = max(0.0, min(line.end, window_end) - start)
        window = window_end - start
        need = line.synth_duration

        if need <= slot + _EPS:
            speed = 1.0
        elif slot > 0 and need / slot <= max_speedup:
            speed = need / slot
        else:
            speed = max_speedup
        placed = need / speed

        slowdown = None
        if placed > window + _EPS:
            slowdown = VideoSlowdown(start=start, end=window_end, output_duration=placed)
            slowdowns.append(slowdown)
        fits.append(
            LineFit(
                segment_id=line.segment_id,
                start=start + shift,
                end=start + shift + placed,
                source_start=start,
                source_end=start + slot,
                speed=speed,
                borrowed_silence=max(0.0, min(placed, window) - slot),
                slowdown=slowdown,
            )
        )
        if slowdown is not None:
            shift += slowdown.added
    return FitPlan(
        source_duration=media_duration,
        duration=media_duration + shift,
        max_speedup=max_speedup,
        lines=tuple(fits),
        slowdowns=tuple(slowdowns),
    )


def stretcher() -> str:
    """Which time-stretch this machine's ffmpeg gives `stretch` (part of the key of a kept stretched line)."""
    return "rubberband transients=mixed" if has_filter("rubberband") else "atempo"


def stretch(clip: AudioClip, factor: float) -> AudioClip:
    """Play `clip` `factor` times faster (factor < 1: slower) keeping its pitch; exactly round(n / factor) frames.

    Uses ffmpeg's rubberband filter (phase vocoder with transient handling), or `atempo` on
    builds without librubberband.
    """
    return stretch_many([(clip, factor)])[0]


def stretch_many(jobs: Sequence[tuple[AudioClip, float]]) -> list[AudioClip]:
    """`stretch(clip, factor)` of every job, the vocoder's share in one ffmpeg process (a filter graph per clip,
    so each clip gets exactly the samples `stretch` alone gives it): starting ffmpeg costs ~0.1 CPU-s, most of
    what stretching one line costs (docs/benchmarks.md)."""
    results: dict[int, AudioClip] = {}
    vocoded: list[int] = []
    targets = []
    for i, (clip, factor) in enumerate(jobs):
        if not factor > 0 or not np.isfinite(factor):
            raise ValueError(f"stretch factor must be a positive number, got {factor}")
        targets.append(round(clip.num_frames / factor))
        if abs(factor - 1.0) < 1e-6 or clip.num_frames == 0:
            results[i] = _fit_length(clip, targets[i])
        elif clip.duration < _MIN_VOCODER_SECONDS:
            results[i] = _resample_length(clip, targets[i])
        else:
            vocoded.append(i)
    if vocoded:
        for i, out in zip(vocoded, _vocode([jobs[i] for i in vocoded]), strict=True):
            # The vocoder's output length is exact for ordinary factors and a few ms short for extreme ones.
            results[i] = _fit_length(out, targets[i])
    return [results[i] for i in range(len(jobs))]


def _vocode(jobs: Sequence[tuple[AudioClip, float]]) -> list[AudioClip]:
    """One ffmpeg process: clip k is read from file k, stretched by its own filter chain, written to output k."""
    import tempfile

    rubberband = has_filter("rubberband")
    inputs: list[str] = []
    graph: list[str] = []
    outputs: list[str] = []
    with tempfile.TemporaryDirectory(prefix="octavia-stretch-") as work:
        for k, (clip, factor) in enumerate(jobs):
            raw = ["-f", "f32le", "-ar", str(clip.sample_rate), "-ac", str(clip.channels)]
            interleaved = clip.samples.T if clip.channels > 1 else clip.samples
            np.ascontiguousarray(interleaved, dtype="<f4").tofile(f"{work}/in{k}.f32")
            inputs += [*raw, "-i", f"{work}/in{k}.f32"]
            # transients=mixed: phase resets only above the fundamental range; the default ("crisp") makes
            # steady pitches wobble by a few percent.
            chain = (f"rubberband=tempo={factor:.6f}:transients=mixed:channels=together" if rubberband
                     else ",".join(f"atempo={f:.6f}" for f in _atempo_chain(factor)))  # fmt: skip
            graph.append(f"[{k}:a]{chain}[out{k}]")
            outputs += ["-map", f"[out{k}]", *raw, f"{work}/out{k}.f32"]
        factors = ", ".join(f"{factor:.3f}x" for _, factor in jobs)
        run_ffmpeg([*inputs, "-filter_complex", ";".join(graph), *outputs], what=f"time-stretch audio by {factors}")
        stretched = []
        for k, (clip, _) in enumerate(jobs):
            out = np.fromfile(f"{work}/out{k}.f32", dtype="<f4").astype(np.float32)
            samples = out.reshape(-1, clip.channels).T if clip.channels > 1 else out
            stretched.append(AudioClip(np.ascontiguousarray(samples), clip.sample_rate))
    return stretched


def _atempo_chain(factor: float) -> list[float]:
    """atempo accepts 0.5..100 per instance; chain instances for slower factors."""
    chain = []
    while factor < 0.5:
        chain.append(0.5)
        factor /= 0.5
    return [*chain, factor]


def _fit_length(clip: AudioClip, frames: int) -> AudioClip:
    n = clip.num_frames
    if n == frames:
        return clip
    if n > frames:
        return AudioClip(np.ascontiguousarray(clip.samples[..., :frames]), clip.sample_rate)
    pad = [(0, 0)] * (clip.samples.ndim - 1) + [(0, frames - n)]
    return AudioClip(np.pad(clip.samples, pad), clip.sample_rate)


def _resample_length(clip: AudioClip, frames: int) -> AudioClip:
    if frames == 0:
        return _fit_length(clip, 0)
    x = np.linspace(0, clip.num_frames - 1, frames)
    src = np.arange(clip.num_frames)
    rows = clip.samples.reshape(clip.channels, -1)
    out = np.stack([np.interp(x, src, row) for row in rows]).astype(np.float32)
    return AudioClip(out if clip.samples.ndim == 2 else out[0], clip.sample_rate)

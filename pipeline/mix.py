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

import bisect
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Protocol, TypeVar

import numpy as np

from octavia.audio import AudioClip
from octavia.disk import sound_file_errors_named
from octavia.records import TimeSpan
from pipeline.timefit import stretch_many
from pipeline.timeline import FitPlan, LineFit, VideoSlowdown

T = TypeVar("T")
R = TypeVar("R")


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
STRETCH_BATCH = 8  # clips per ffmpeg process: 0.12 -> 0.05 CPU-s per 4 s line (docs/benchmarks.md)


# -- block-wise audio: sources to read from, sinks to write to, a loudness meter fed block by block ------------
BLOCK_SECONDS = 10.0  # a stereo 48 kHz float block is 3.8 MB


class Source(Protocol):
    sample_rate: int
    channels: int
    frames: int

    def read(self, start: int, frames: int) -> np.ndarray:
        """(channels, frames) float32; zeros past the end."""
        ...


class ArraySource:
    def __init__(self, clip: AudioClip) -> None:
        self._samples = clip.samples.reshape(clip.channels, -1)
        self.sample_rate, self.channels, self.frames = clip.sample_rate, clip.channels, clip.num_frames

    def read(self, start: int, frames: int) -> np.ndarray:
        return _fit_frames(self._samples[:, start : start + frames], frames).astype(np.float32, copy=False)


class WavSource:
    """An audio file read block by block (any format soundfile reads), never whole."""

    def __init__(self, path: str | Path) -> None:
        import soundfile

        self.path = str(path)
        info = soundfile.info(self.path)
        self.sample_rate, self.channels, self.frames = int(info.samplerate), int(info.channels), int(info.frames)

    def read(self, start: int, frames: int) -> np.ndarray:
        import soundfile

        with soundfile.SoundFile(self.path) as f:
            f.seek(min(start, self.frames))
            data = f.read(max(0, min(frames, self.frames - start)), dtype="float32", always_2d=True)
        return _fit_frames(np.ascontiguousarray(data.T), frames)


class Sink(Protocol):
    def write(self, block: np.ndarray) -> None: ...

    def source(self) -> Source:
        """What was written, to read again (after the sink is closed)."""
        ...

    def __enter__(self) -> Sink: ...

    def __exit__(self, *exc: object) -> None: ...


class ArraySink:
    def __init__(self, channels: int, sample_rate: int) -> None:
        self.channels, self.sample_rate = channels, sample_rate
        self._blocks: list[np.ndarray] = []

    def write(self, block: np.ndarray) -> None:
        self._blocks.append(block.reshape(self.channels, -1))

    def samples(self) -> np.ndarray:
        if not self._blocks:
            return np.zeros((self.channels, 0), np.float32)
        return np.concatenate(self._blocks, axis=1).astype(np.float32, copy=False)

    def source(self) -> Source:
        out = self.samples()
        return ArraySource(AudioClip(out[0] if self.channels == 1 else out, self.sample_rate))

    def __enter__(self) -> ArraySink:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


class WavSink:
    def __init__(self, path: str | Path, sample_rate: int, channels: int, subtype: str = "FLOAT") -> None:
        import soundfile

        self.path = str(path)
        self._file = soundfile.SoundFile(self.path, "w", samplerate=sample_rate, channels=channels, subtype=subtype)

    def write(self, block: np.ndarray) -> None:
        with sound_file_errors_named(Path(self.path).parent):
            self._file.write(np.ascontiguousarray(block.reshape(self._file.channels, -1).T))

    def source(self) -> Source:
        return WavSource(self.path)

    def __enter__(self) -> WavSink:
        return self

    def __exit__(self, *exc: object) -> None:
        with sound_file_errors_named(Path(self.path).parent):
            self._file.close()  # writes the header


@dataclass(frozen=True)
class Level:
    lufs: float | None  # integrated loudness; None for silence or less than one 400 ms gating block
    peak: float  # largest absolute sample


class LoudnessMeter:
    """ITU-R BS.1770 integrated loudness fed block by block: pyloudnorm's K-weighting filters (state carried
    across blocks) and its gating (400 ms blocks, 75 % overlap, -70 LUFS absolute, -10 LU relative), keeping
    only one sum of squares per 100 ms step instead of the signal."""

    _GAIN = (1.0, 1.0, 1.0, 1.41, 1.41)  # channel weights (L, R, C, Ls, Rs)

    def __init__(self, sample_rate: int, channels: int) -> None:
        import pyloudnorm
        from scipy.signal import lfilter_zi

        self.rate, self.channels = sample_rate, channels
        self._stages = [(f.b, f.a) for f in pyloudnorm.Meter(sample_rate)._filters.values()]
        self._state = [[lfilter_zi(b, a) * 0.0 for b, a in self._stages] for _ in range(channels)]
        self._frames = 0
        self._steps: list[np.ndarray] = []  # per 100 ms step: sum of squares per channel
        self._open = np.zeros(channels)  # the step being filled
        self.peak = 0.0

    def _boundary(self, step: int) -> int:
        return int(0.4 * (step * 0.25) * self.rate)  # pyloudnorm's block start formula, step = quarter block

    def add(self, block: np.ndarray) -> None:
        from scipy.signal import lfilter

        x = block.reshape(self.channels, -1).astype(np.float64)
        if x.shape[1] == 0:
            return
        self.peak = max(self.peak, float(np.abs(x).max()))
        squared = np.empty_like(x)
        for ch in range(self.channels):
            y = x[ch]
            for i, (b, a) in enumerate(self._stages):
                y, self._state[ch][i] = lfilter(b, a, y, zi=self._state[ch][i])
            squared[ch] = y * y
        start, end = self._frames, self._frames + x.shape[1]
        pos = start
        while pos < end:
            boundary = self._boundary(len(self._steps) + 1)
            upto = min(end, boundary)
            self._open += squared[:, pos - start : upto - start].sum(axis=1)
            pos = upto
            if pos == boundary:
                self._steps.append(self._open)
                self._open = np.zeros(self.channels)
        self._frames = end

    def result(self) -> Level:
        return Level(self._integrated(), self.peak)

    def _integrated(self) -> float | None:
        if self._frames < int(0.4 * self.rate) + 1:
            return None
        seconds = self._frames / self.rate
        blocks = int(np.round((seconds - 0.4) / 0.1)) + 1
        steps = np.array([*self._steps, self._open])
        if len(steps) < blocks + 3:
            steps = np.vstack([steps, np.zeros((blocks + 3 - len(steps), self.channels))])
        totals = np.cumsum(np.vstack([np.zeros(self.channels), steps]), axis=0)
        z = (totals[4 : blocks + 4] - totals[:blocks]) / (0.4 * self.rate)  # (blocks, channels) mean squares
        weights = np.array(self._GAIN[: self.channels])
        with np.errstate(divide="ignore"):
            levels = -0.691 + 10.0 * np.log10(z @ weights)
            gated = levels >= -70.0
            if not gated.any():
                return None
            relative = -0.691 + 10.0 * np.log10(z[gated].mean(axis=0) @ weights) - 10.0
            kept = (levels > relative) & gated
            if not kept.any():
                return None
            value = -0.691 + 10.0 * np.log10(z[kept].mean(axis=0) @ weights)
        return float(value) if np.isfinite(value) else None


def measure(source: Source, channels: int, block: int) -> Level:
    meter = LoudnessMeter(source.sample_rate, channels)
    for start in range(0, source.frames, block):
        meter.add(_as_channels(source.read(start, min(block, source.frames - start)), channels))
    return meter.result()


def _as_channels(block: np.ndarray, channels: int) -> np.ndarray:
    """Mono copied to both sides, stereo averaged to mono (as `conform` does)."""
    if block.shape[0] == channels:
        return block
    if channels == 1:
        return block.mean(axis=0, keepdims=True).astype(np.float32)
    return np.tile(block.mean(axis=0, keepdims=True), (channels, 1)).astype(np.float32)


class StretchedLines(Protocol):
    """Sped-up line audio kept by segment id and speed (thread-safe: `place_lines` calls it from its workers)."""

    def get(self, segment_id: int, speed: float) -> AudioClip | None: ...

    def put(self, segment_id: int, speed: float, clip: AudioClip) -> None: ...


class StretchedSpans(Protocol):
    """Slowed spans of one source, stretched, kept by their slow-down (thread-safe, as `StretchedLines`)."""

    def get(self, slowdown: VideoSlowdown) -> AudioClip | None: ...

    def put(self, slowdown: VideoSlowdown, clip: AudioClip) -> None: ...


def build_dub_track(plan: FitPlan, lines: Mapping[int, AudioClip], *, sample_rate: int, channels: int = 1) -> AudioClip:
    """Every line's speech, sped up by its planned factor, at its planned place: one track `plan.duration` long."""
    sink = ArraySink(channels, sample_rate)
    place_lines(plan, lines.get, sink, sample_rate=sample_rate, channels=channels)
    track = sink.samples()
    return AudioClip(track[0] if channels == 1 else track, sample_rate)


def place_lines(
    plan: FitPlan,
    line_audio: Callable[[int], AudioClip | None],
    sink: Sink,
    *,
    sample_rate: int,
    channels: int = 1,
    block_seconds: float = BLOCK_SECONDS,
    workers: int = 1,
    stretched: StretchedLines | None = None,
) -> None:
    """Write the dub track to `sink` block by block: a line's clip is loaded and stretched when the first block
    it reaches is built and dropped after the last, so memory holds one block and the lines crossing it.
    Lines are stretched `STRETCH_BATCH` at a time (one ffmpeg process), on `workers` threads (so on as many
    cores), at most `2 * workers` batches ahead of the block being built. `stretched` keeps sped-up lines from
    one run to the next (a redub re-stretches only the lines whose audio or speed changed)."""
    total = round(plan.duration * sample_rate)
    block = max(1, round(block_seconds * sample_rate))
    fits = sorted(plan.lines, key=lambda f: f.start)

    def prepare(batch: Sequence[LineFit]) -> list[AudioClip]:
        kept = [
            stretched.get(f.segment_id, f.speed) if stretched is not None and f.speed != 1.0 else None for f in batch
        ]
        todo = [k for k, clip in enumerate(kept) if clip is None]
        jobs = []
        for k in todo:
            audio = line_audio(batch[k].segment_id)
            if audio is None:
                raise ValueError(f"no audio for segment {batch[k].segment_id}; the plan and the synthesized lines "
                                 "disagree")  # fmt: skip
            jobs.append((audio, batch[k].speed))
        # Stretched at the line's own rate (TTS: 24 kHz), then brought to the mix's: half the vocoder work.
        done = dict(zip(todo, stretch_many(jobs), strict=True))
        if stretched is not None:
            for k, clip in done.items():
                if batch[k].speed != 1.0:
                    stretched.put(batch[k].segment_id, batch[k].speed, clip)
        return [conform(done[k] if clip is None else clip, sample_rate, channels) for k, clip in enumerate(kept)]

    with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="place-lines") as pool:
        clips = _in_order_batched(pool, prepare, fits, 2 * max(1, workers))
        _place(fits, clips, sink, total, block, sample_rate, channels)


def _in_order(pool: ThreadPoolExecutor, prepare: Callable[[T], R], items: Iterable[T], ahead: int) -> Iterator[R]:
    """`prepare(item)` of each item, in order, with at most `ahead` of them submitted before they are taken.
    `items` is consumed in the calling thread (it may read a source that threads must not share)."""
    upcoming = iter(items)
    pending: deque[Future[R]] = deque(pool.submit(prepare, item) for item in islice(upcoming, ahead))
    while pending:
        done = pending.popleft().result()
        following = next(upcoming, None)
        if following is not None:
            pending.append(pool.submit(prepare, following))
        yield done


def _in_order_batched(
    pool: ThreadPoolExecutor, prepare: Callable[[list[T]], list[R]], items: Iterable[T], ahead: int
) -> Iterator[R]:
    """`_in_order` over batches of `STRETCH_BATCH` items, one result at a time."""
    upcoming = iter(items)
    batches = iter(lambda: list(islice(upcoming, STRETCH_BATCH)), [])
    for done in _in_order(pool, prepare, batches, ahead):
        yield from done


def _place(
    fits: Sequence[LineFit],
    clips: Iterator[AudioClip],
    sink: Sink,
    total: int,
    block: int,
    sample_rate: int,
    channels: int,
) -> None:
    placed: dict[int, tuple[int, np.ndarray]] = {}  # segment id -> (first frame, samples) of lines in reach
    upcoming = 0
    for start in range(0, total, block):
        end = min(total, start + block)
        while upcoming < len(fits) and round(fits[upcoming].start * sample_rate) < end:
            fit = fits[upcoming]
            upcoming += 1
            clip = next(clips)
            a = round(fit.start * sample_rate)
            n = min(round((fit.end - fit.start) * sample_rate), clip.num_frames, total - a)
            if n > 0:
                placed[fit.segment_id] = (a, clip.samples.reshape(channels, -1)[:, :n])
        out = np.zeros((channels, end - start), np.float32)
        for segment_id, (a, samples) in list(placed.items()):
            lo, hi = max(a, start), min(a + samples.shape[1], end)
            if lo < hi:
                out[:, lo - start : hi - start] += samples[:, lo - a : hi - a]
            if a + samples.shape[1] <= end:
                del placed[segment_id]
        sink.write(out)


def retime(clip: AudioClip, plan: FitPlan) -> AudioClip:
    """Move source-timed audio (background, original track) onto the output timeline: slowed spans are stretched
    with pitch kept; spans too short or too slowed to stretch play as they are, then silence fills the rest
    (freezes: only silence). The result is `plan.duration` long."""
    sink = ArraySink(clip.channels, clip.sample_rate)
    retime_blocks(ArraySource(clip), plan, sink)
    out = sink.samples()
    return AudioClip(out[0] if clip.channels == 1 else out, clip.sample_rate)


def retime_blocks(
    source: Source,
    plan: FitPlan,
    sink: Sink,
    block_seconds: float = BLOCK_SECONDS,
    *,
    workers: int = 1,
    stretched: StretchedSpans | None = None,
) -> None:
    """`retime` from a source to a sink: unchanged stretches are copied block by block, slowed spans (a line's
    length) are stretched in memory, `STRETCH_BATCH` per ffmpeg process on `workers` threads as in `place_lines`,
    at most `2 * workers` batches ahead of the one being written. `stretched` keeps the stretched spans of this
    source from one run to the next."""
    sr = source.sample_rate
    block = max(1, round(block_seconds * sr))
    source_frames = round(plan.source_duration * sr)
    total = round(plan.duration * sr) if plan.slowdowns else source_frames
    written = 0

    def emit(samples: np.ndarray) -> None:
        nonlocal written
        samples = samples[:, : max(0, total - written)]
        if samples.shape[1]:
            sink.write(samples)
            written += samples.shape[1]

    def copy(a: int, b: int) -> None:
        for start in range(a, b, block):
            emit(source.read(start, min(block, b - start)))

    def spans() -> Iterator[tuple[VideoSlowdown, np.ndarray]]:
        for s in plan.slowdowns:
            a, b = round(s.start * sr), round(s.end * sr)
            yield s, source.read(a, b - a)

    def retimed(batch: list[tuple[VideoSlowdown, np.ndarray]]) -> list[np.ndarray]:
        clips = [(s, AudioClip(samples[0] if source.channels == 1 else samples, sr)) for s, samples in batch]
        kept = [stretched.get(s) if stretched is not None and _stretchable(span, s) else None for s, span in clips]
        todo = [k for k, (s, span) in enumerate(clips) if kept[k] is None and _stretchable(span, s)]
        done = dict(zip(todo, stretch_many([(clips[k][1], 1.0 / clips[k][0].factor) for k in todo]), strict=True))
        if stretched is not None:
            for k, fresh in done.items():
                stretched.put(clips[k][0], fresh)
        pieces = []
        for k, ((s, span), clip) in enumerate(zip(clips, kept, strict=True)):
            if not _stretchable(span, s):
                played = _faded(span.samples, sr)
            else:
                played = (done[k] if clip is None else clip).samples
            pieces.append(_fit_frames(played, round(s.output_duration * sr)).reshape(source.channels, -1))
        return pieces

    cursor = 0
    with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="retime") as pool:
        pieces = _in_order_batched(pool, retimed, spans(), 2 * max(1, workers))
        for s, piece in zip(plan.slowdowns, pieces, strict=True):
            copy(cursor, round(s.start * sr))
            emit(piece)
            cursor = round(s.end * sr)
    copy(cursor, source_frames)
    while written < total:
        emit(np.zeros((source.channels, min(block, total - written)), np.float32))


def _stretchable(span: AudioClip, slowdown: VideoSlowdown) -> bool:
    return span.duration >= _MIN_STRETCHABLE and slowdown.factor <= 4.0


def ducking_gain(
    num_frames: int,
    sample_rate: int,
    speech: Sequence[TimeSpan],
    preset: DuckingPreset | str = "standard",
    *,
    offset: int = 0,
) -> np.ndarray:
    """Per-sample linear gain for the background: between-speech level, dipping to the under-speech level.
    `offset`: the first frame's index on the whole track (block-wise mixing)."""
    preset = _preset(preset)
    return _ducking_gain(num_frames, sample_rate, _merge(speech, preset.hold), preset, offset)


def _ducking_gain(
    num_frames: int, sample_rate: int, merged: Sequence[tuple[float, float]], preset: DuckingPreset, offset: int
) -> np.ndarray:
    amount = np.zeros(num_frames, np.float32)  # 0 = between speech, 1 = fully ducked
    attack, release = round(preset.attack * sample_rate), round(preset.release * sample_rate)
    first = max(0, bisect.bisect_left([end for _, end in merged], (offset - release) / sample_rate) - 1)
    for start, end in merged[first:]:
        a, b = round(start * sample_rate) - offset, round(end * sample_rate) - offset
        if a - attack > num_frames:
            break
        amount[max(0, a) : max(0, b)] = 1.0
        _ramp_into(amount, a, attack, rising=True)
        _ramp_into(amount, b, release, rising=False)
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
    In memory; `mix_to_file` does the same block by block for tracks of any length.
    """
    sr = background.sample_rate if background is not None else dub.sample_rate
    channels = max(dub.channels, background.channels if background is not None else 1)
    voice = conform(dub, sr, channels)
    if speech is None:
        speech = detect_speech(voice)
    sink = ArraySink(channels, sr)
    mix_blocks(
        ArraySource(voice),
        ArraySource(conform(background, sr, channels)) if background is not None else None,
        sink,
        speech=speech,
        ducking=ducking,
        target_lufs=target_lufs,
        peak_dbfs=peak_dbfs,
        voice_reference=ArraySource(conform(voice_reference, sr, channels)) if voice_reference is not None else None,
        scratch=lambda: ArraySink(channels, sr),
    )
    out = sink.samples()
    return AudioClip(out[0] if channels == 1 else out, sr)


def mix_to_file(
    dub: Source,
    background: Source | None,
    path: str | Path,
    *,
    speech: Sequence[TimeSpan],
    ducking: DuckingPreset | str = "standard",
    target_lufs: float = DEFAULT_TARGET_LUFS,
    peak_dbfs: float = DEFAULT_PEAK_DBFS,
    scratch_dir: str | Path,
) -> None:
    """`mix` for long tracks: sources are read and the result written block by block (16-bit WAV at `path`);
    intermediate passes go to float WAVs in `scratch_dir` and are removed. Memory is a few blocks, whatever the
    duration."""
    channels = max(dub.channels, background.channels if background is not None else 1)
    passes: list[Path] = []

    def scratch() -> Sink:
        passes.append(Path(scratch_dir) / f".mix-pass-{len(passes)}-{uuid.uuid4().hex[:8]}.wav")
        return WavSink(passes[-1], dub.sample_rate, channels)

    try:
        with WavSink(path, dub.sample_rate, channels, subtype="PCM_16") as sink:
            mix_blocks(dub, background, sink, speech=speech, ducking=ducking, target_lufs=target_lufs,
                       peak_dbfs=peak_dbfs, scratch=scratch)  # fmt: skip
    finally:
        for p in passes:
            p.unlink(missing_ok=True)


def mix_blocks(
    dub: Source,
    background: Source | None,
    sink: Sink,
    *,
    speech: Sequence[TimeSpan],
    ducking: DuckingPreset | str,
    target_lufs: float,
    peak_dbfs: float,
    scratch: Callable[[], Sink],
    voice_reference: Source | None = None,
    block_seconds: float = BLOCK_SECONDS,
) -> None:
    """The one mixing algorithm, over sources at one sample rate, written to `sink`: level the dub (to the
    reference, else above the background), add the ducked background, normalise loudness, limit peaks."""
    preset = _preset(ducking)
    if peak_dbfs > 0:
        raise ValueError(f"peak_dbfs must be <= 0, got {peak_dbfs}")
    sr = dub.sample_rate
    if background is not None and background.sample_rate != sr:
        raise ValueError(f"background at {background.sample_rate} Hz, dub at {sr} Hz: conform them first")
    channels = max(dub.channels, background.channels if background is not None else 1)
    n = dub.frames
    block = max(1, round(block_seconds * sr))

    voice_gain = 1.0
    voice_lufs = measure(dub, channels, block).lufs
    if voice_lufs is not None:
        want = measure(voice_reference, channels, block).lufs if voice_reference is not None else None
        if want is None:
            want = target_lufs
            if background is not None:
                bed_lufs = measure(background, channels, block).lufs
                if bed_lufs is not None:
                    want = max(target_lufs, bed_lufs + SPEECH_OVER_BACKGROUND_LU)
        voice_gain = _db(want - voice_lufs)

    merged = _merge(speech, preset.hold)
    summed = scratch()
    meter = LoudnessMeter(sr, channels)
    with summed:
        for start in range(0, n, block):
            frames = min(block, n - start)
            out = _as_channels(dub.read(start, frames), channels) * np.float32(voice_gain)
            if background is not None:
                bed = _as_channels(background.read(start, frames), channels)
                out = out + bed * _ducking_gain(frames, sr, merged, preset, start)[None, :]
            out = out.astype(np.float32)
            meter.add(out)
            summed.write(out)
    normalize_blocks(summed.source(), meter.result(), sink, target_lufs=target_lufs, peak_dbfs=peak_dbfs,
                     scratch=scratch, block=block)  # fmt: skip


def normalize_blocks(
    source: Source,
    level: Level,
    sink: Sink,
    *,
    target_lufs: float,
    peak_dbfs: float,
    scratch: Callable[[], Sink],
    block: int,
) -> None:
    """Gain to `target_lufs`, then limit peaks to `peak_dbfs`, repeated (at most 3x) to win back the loudness the
    limiter took; the limiter runs last, so the peak bound always holds, and silence is left unchanged. Each
    round is one pass over `source` (whose `level` is known) that also measures its result."""
    ceiling = float(_db(peak_dbfs))
    current = level
    for _ in range(3):
        if current.lufs is None or abs(current.lufs - target_lufs) < 0.1:
            break
        passed = scratch()
        with passed:
            current = _limit_pass(source, passed, _db(target_lufs - current.lufs), ceiling, block)
        source = passed.source()
    if current.peak > ceiling:  # too short to measure, or already at target but too hot
        _limit_pass(source, sink, 1.0, ceiling, block)
    else:
        copy_audio(source, sink, block)


def limit(samples: np.ndarray, sample_rate: int, ceiling: float) -> np.ndarray:
    """Look-ahead peak limiter: the gain dips smoothly around each over, so the waveform is not clipped."""
    x = samples.reshape(-1, samples.shape[-1])
    gain = _limiter_gain(np.abs(x).max(axis=0), max(1, int(_LIMITER_LOOKAHEAD * sample_rate)), ceiling)
    if gain is None:
        return samples
    out = np.clip(x * gain[None, :], -ceiling, ceiling)  # clip only guards float rounding
    return out.reshape(samples.shape).astype(np.float32)


def _limiter_gain(peak: np.ndarray, width: int, ceiling: float) -> np.ndarray | None:
    """Per-sample gain at or under what each sample needs to stay under `ceiling`; None when none is needed."""
    from scipy.ndimage import minimum_filter1d, uniform_filter1d

    needed = np.minimum(1.0, ceiling / np.maximum(peak, 1e-12))
    if needed.min(initial=1.0) >= 1.0:
        return None
    # min over ±width then average over ±width/2: at each over the gain is <= what that sample needs.
    gain = minimum_filter1d(needed, size=2 * width + 1, mode="nearest")
    return uniform_filter1d(gain, size=width | 1, mode="nearest")


def _limit_pass(source: Source, sink: Sink, gain: float, ceiling: float, block: int) -> Level:
    """sink = limit(source * gain), block by block: each block is limited with a margin of neighbouring samples
    on both sides, so the result equals limiting the whole track at once."""
    width = max(1, int(_LIMITER_LOOKAHEAD * source.sample_rate))
    margin = 2 * width + 2
    meter = LoudnessMeter(source.sample_rate, source.channels)
    n = source.frames
    for start in range(0, n, block):
        frames = min(block, n - start)
        lo, hi = max(0, start - margin), min(n, start + frames + margin)
        x = source.read(lo, hi - lo) * np.float32(gain)
        g = _limiter_gain(np.abs(x).max(axis=0), width, ceiling)
        if g is not None:
            x = np.clip(x * g[None, :], -ceiling, ceiling)
        out = np.ascontiguousarray(x[:, start - lo : start - lo + frames], dtype=np.float32)
        meter.add(out)
        sink.write(out)
    return meter.result()


def copy_audio(source: Source, sink: Sink, block: int) -> None:
    for start in range(0, source.frames, block):
        sink.write(source.read(start, min(block, source.frames - start)))


def loudness(samples: np.ndarray, sample_rate: int) -> float | None:
    """Integrated loudness in LUFS; None for silence or audio shorter than one 400 ms gating block."""
    x = samples.reshape(-1, samples.shape[-1])
    meter = LoudnessMeter(sample_rate, x.shape[0])
    meter.add(x)
    return meter.result().lufs


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

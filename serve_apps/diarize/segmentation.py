"""pyannote segmentation: frame-level speech and local speaker activity, and the speech segments cut from it.

A pyannote segmentation model (PyanNet, e.g. `pyannote/segmentation-3.0`) looks at 10 s windows and says, for
every ~17 ms frame, which of up to 3 *local* speakers talk. Local means the labels are only meaningful inside
one window: "speaker 1" of two windows may be different people. So this module produces what is reliable
without speaker embeddings — where speech is, and where the speaker changes — and leaves "who" to clustering.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from octavia.audio import AudioClip
from octavia.errors import ModelNotAvailableError
from octavia.records import TimeSpan

if TYPE_CHECKING:
    from serve_apps.diarize.pyannet import PyanNetSegmenter

SAMPLE_RATE = 16_000
CHECKPOINT_NAME = "pytorch_model.bin"  # what pyannote's `Model.from_pretrained(<dir>)` looks for


def load_segmenter(model: str | Path) -> PyanNetSegmenter:
    """A PyanNet checkpoint file, or a directory holding `pytorch_model.bin`, loaded offline without pyannote."""
    from serve_apps.diarize.pyannet import PyanNetSegmenter, read_checkpoint

    path = Path(model)
    if path.is_dir():
        path = path / CHECKPOINT_NAME
    if not path.is_file():
        raise ModelNotAvailableError(
            f"no pyannote checkpoint at {path}; pass the directory `ModelStore().resolve('pyannote-segmentation-3.0')`"
            " returns (get it with `octavia models fetch pyannote-segmentation-3.0`)",
            details={"path": str(path)},
        )
    return PyanNetSegmenter(read_checkpoint(path.read_bytes(), path), path)


@dataclass(frozen=True)
class FrameActivity:
    """Segmentation output on a regular frame grid; frame `t` covers `start + t * step` for `duration` seconds.

    `speech[t]` is the probability that someone speaks (averaged over the overlapping windows that saw the frame).
    `speakers[t, k]` is 1 when local speaker `k` is active according to `window[t]`, the model window where frame
    `t` was most central. Local speaker indices are comparable only between frames of the same window.
    """

    speech: np.ndarray  # (frames,) float32 in [0, 1]
    speakers: np.ndarray  # (frames, local_speakers) uint8, 0/1
    window: np.ndarray  # (frames,) int, index of the model window each frame's `speakers` row comes from
    start: float
    step: float
    duration: float

    @property
    def num_frames(self) -> int:
        return int(self.speech.shape[0])

    def centers(self) -> np.ndarray:
        return self.start + self.duration / 2 + self.step * np.arange(self.num_frames)


class SegmentationModel:
    """A pyannote segmentation model (PyanNet) run over a whole clip with overlapping windows.

    `step` is the hop between windows (default a quarter window: each frame is then read from a window where
    it sits in the central 25 %, away from the edges where the model sees little context). The windows are cut
    as pyannote's `Inference` cuts them: whole windows every `step`, then the rest zero-padded to a window.
    """

    sample_rate = SAMPLE_RATE

    def __init__(self, model: str | Path, *, step: float | None = None, batch_size: int = 8, device: str = "cpu"):
        import torch

        self._segmenter = load_segmenter(model)
        spec = self._segmenter.spec
        self.window_duration = spec.duration
        self.num_local_speakers = len(spec.classes)
        self._powerset = spec.powerset_mapping() if spec.powerset else None
        self.frame_start, self.frame_step, self.frame_duration = self._segmenter.receptive_field()
        self.step = float(step) if step else self.window_duration / 4
        if not 0 < self.step <= self.window_duration:
            raise ValueError(f"step must be in (0, {self.window_duration}] seconds, got {self.step}")
        self._batch_size = batch_size
        self._device = torch.device(device)
        self._segmenter.network.to(self._device)

    @property
    def network(self) -> Any:
        """The loaded network, a torch module (read-only use: inspection, tests)."""
        return self._segmenter.network

    def activity(self, audio: AudioClip) -> FrameActivity:
        clip = audio.mono().resample(SAMPLE_RATE)
        if clip.num_frames == 0:
            raise ValueError("cannot segment an empty clip")
        raw = self.window_outputs(clip)  # (windows, frames, classes)
        speech, speakers = self._to_multilabel(raw)
        num_frames = max(0, self._segmenter.num_frames(clip.num_frames))  # a few ms of audio give no frame at all
        frames_per_step = self.step / self.frame_step
        return _stitch(
            speech, speakers, num_frames, frames_per_step, self.frame_start, self.frame_step, self.frame_duration
        )

    def window_outputs(self, audio: AudioClip) -> np.ndarray:
        """The network's raw output for each window of `audio`: (windows, frames, classes)."""
        import torch

        samples = audio.mono().resample(SAMPLE_RATE).samples
        window = round(self.window_duration * SAMPLE_RATE)
        hop = round(self.step * SAMPLE_RATE)
        waveform = torch.from_numpy(np.ascontiguousarray(samples, dtype=np.float32))
        whole = 1 + (len(samples) - window) // hop if len(samples) >= window else 0
        windows = [waveform.unfold(0, window, hop)] if whole else []
        if len(samples) < window or (len(samples) - window) % hop > 0:  # the rest, zero-padded to a window
            rest = waveform[whole * hop :]
            windows.append(torch.nn.functional.pad(rest, (0, window - len(rest)))[None])
        batches = torch.cat(windows)[:, None, :]  # (windows, channel, samples)
        outputs = []
        with torch.inference_mode():
            for first in range(0, len(batches), self._batch_size):
                outputs.append(self._segmenter.network(batches[first : first + self._batch_size].to(self._device)))
        return torch.cat(outputs).cpu().numpy()

    def _to_multilabel(self, raw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if self._powerset is None:  # multilabel models output per-speaker sigmoid probabilities
            return raw.max(axis=-1), (raw > 0.5).astype(np.uint8)
        speech = 1.0 - np.exp(raw[..., 0])  # class 0 of the powerset is "nobody speaks"
        speakers = self._powerset[raw.argmax(axis=-1)]  # the most likely class's speakers
        return speech.astype(np.float32), speakers.astype(np.uint8)

    def speaker_segments(self, audio: AudioClip, **options: float) -> list[TimeSpan]:
        """Speech with one speaker throughout (as far as segmentation can tell), in seconds from `audio`'s start.

        `options` are those of the module-level `speaker_segments` (onset, min_speech, ...).
        """
        return speaker_segments(self.activity(audio), duration=audio.duration, **options)


def _stitch(
    speech: np.ndarray,
    speakers: np.ndarray,
    num_frames: int,
    frames_per_step: float,
    start: float,
    step: float,
    duration: float,
) -> FrameActivity:
    """Overlap-add speech over windows (Hamming-weighted) and read speakers from each frame's most central window."""
    num_windows, window_frames, num_speakers = speakers.shape
    weights = np.hamming(window_frames) + 1e-3  # keep edge frames of the first/last window counted
    speech_sum = np.zeros(num_frames, np.float64)
    weight_sum = np.zeros(num_frames, np.float64)
    best_weight = np.full(num_frames, -1.0)
    stitched = np.zeros((num_frames, num_speakers), np.uint8)
    owner = np.zeros(num_frames, np.int64)
    for w in range(num_windows):
        first = round(w * frames_per_step)
        local = np.arange(window_frames)
        keep = first + local < num_frames
        frames, local, weight = first + local[keep], local[keep], weights[keep]
        speech_sum[frames] += weight * speech[w, local]
        weight_sum[frames] += weight
        better = weight > best_weight[frames]
        best_weight[frames[better]] = weight[better]
        stitched[frames[better]] = speakers[w, local[better]]
        owner[frames[better]] = w
    aggregated = (speech_sum / np.maximum(weight_sum, 1e-9)).astype(np.float32)
    return FrameActivity(aggregated, stitched, owner, start, step, duration)


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """[start, end) frame index pairs of the True runs of a boolean array."""
    padded = np.concatenate([[False], mask.astype(bool), [False]])
    edges = np.flatnonzero(padded[1:] != padded[:-1])
    return list(zip(edges[::2].tolist(), edges[1::2].tolist(), strict=True))


def speaker_segments(
    activity: FrameActivity,
    *,
    duration: float | None = None,
    onset: float = 0.5,
    min_speech: float = 0.2,
    min_silence: float = 0.1,
    min_segment: float = 0.4,
) -> list[TimeSpan]:
    """Cut speech into segments at every local speaker change, in time order.

    Speech is where `activity.speech >= onset`, after closing pauses shorter than `min_silence` and dropping
    bursts shorter than `min_speech`. A speech region is split where the set of active local speakers changes
    within one model window (across windows local labels cannot be compared, so no split is made there). Pieces
    shorter than `min_segment` are too short to embed reliably and join their longer neighbour.
    """
    if onset <= 0 or onset >= 1:
        raise ValueError(f"onset must be in (0, 1), got {onset}")
    step = activity.step
    mask = activity.speech >= onset
    for a, b in _runs(~mask):
        if a > 0 and b < len(mask) and (b - a) * step < min_silence:
            mask[a:b] = True
    for a, b in _runs(mask):
        if (b - a) * step < min_speech:
            mask[a:b] = False

    # One code per frame for the set of active local speakers, smoothed so that flickers shorter than about
    # `min_segment` / 2 do not cut anything. 0 (nobody, though speech says someone) never cuts.
    codes = activity.speakers.astype(np.int64) @ (1 << np.arange(activity.speakers.shape[1]))
    codes = _smooth_codes(codes, activity.window, max(1, round(min_segment / step)))
    centers = activity.centers()
    end_of_audio = duration if duration is not None else float(centers[-1] + step / 2) if len(centers) else 0.0
    segments: list[TimeSpan] = []
    for a, b in _runs(mask):
        cuts = [a]
        current = codes[a]
        for t in range(a + 1, b):
            code = codes[t]
            if activity.window[t] != activity.window[t - 1]:
                current = code  # a new window numbers its speakers afresh: no comparison possible
            elif code != 0:
                if current != 0 and code != current:
                    cuts.append(t)
                current = code
        cuts.append(b)
        pieces = [(cuts[i], cuts[i + 1]) for i in range(len(cuts) - 1)]
        pieces = _absorb_short(pieces, int(np.ceil(min_segment / step)))
        for first, last in pieces:
            start = max(0.0, float(centers[first] - step / 2))
            end = min(end_of_audio, float(centers[last - 1] + step / 2))
            if end > start:
                segments.append(TimeSpan(start=round(start, 3), end=round(end, 3)))
    return segments


def _smooth_codes(codes: np.ndarray, window: np.ndarray, width: int) -> np.ndarray:
    """Replace each non-zero code by the most frequent non-zero code around it (same model window only)."""
    from scipy.ndimage import uniform_filter1d

    smoothed = codes.copy()
    num_codes = int(codes.max()) + 1 if codes.size else 1
    edges = [0, *(np.flatnonzero(np.diff(window)) + 1).tolist(), len(codes)]
    for a, b in itertools.pairwise(edges):
        part = codes[a:b]
        votes = np.zeros((b - a, num_codes))
        votes[np.arange(b - a), part] = 1.0
        votes[:, 0] = 0.0
        votes = uniform_filter1d(votes, size=width, axis=0, mode="nearest")
        smoothed[a:b] = np.where(part != 0, votes.argmax(axis=1), 0)
    return smoothed


def _absorb_short(pieces: list[tuple[int, int]], min_frames: int) -> list[tuple[int, int]]:
    """Merge pieces shorter than `min_frames` into the longer of their neighbours (pieces are contiguous)."""
    pieces = list(pieces)
    while len(pieces) > 1:
        lengths = [b - a for a, b in pieces]
        shortest = int(np.argmin(lengths))
        if lengths[shortest] >= min_frames:
            break
        if shortest == 0:
            other = 1
        elif shortest == len(pieces) - 1:
            other = shortest - 1
        else:
            other = shortest - 1 if lengths[shortest - 1] >= lengths[shortest + 1] else shortest + 1
        lo, hi = sorted((shortest, other))
        pieces[lo : hi + 1] = [(pieces[lo][0], pieces[hi][1])]
    return pieces

"""In-memory audio passed between engines."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from octavia.disk import sound_file_errors_named

# Speech models hear level: whisper-base lost words from speech peaking at -50 dBFS and heard nothing at -60 dBFS;
# Spleeter missed two of six lines in a conversation 40 dB below normal (Silero's VAD found them all). A clip whose
# loudest sample is below QUIET_PEAK is raised to RAISED_PEAK before such a model hears it, by at most MAX_GAIN so
# that digital near-silence is not made loud.
QUIET_PEAK = 0.1  # -20 dBFS
RAISED_PEAK = 0.5  # -6 dBFS
MAX_GAIN = 1000.0  # +60 dB


def quiet_gain(samples: np.ndarray) -> float:
    """The gain to hand `samples` to a level-sensitive model with: 1.0 unless their peak is below QUIET_PEAK."""
    peak = float(np.abs(samples).max()) if samples.size else 0.0
    if peak == 0.0 or peak >= QUIET_PEAK:
        return 1.0
    return min(RAISED_PEAK / peak, MAX_GAIN)


@dataclass(frozen=True)
class AudioClip:
    """float32 samples in [-1, 1]: shape (n,) for mono or (channels, n)."""

    samples: np.ndarray
    sample_rate: int

    def __post_init__(self) -> None:
        if self.sample_rate <= 0:
            raise ValueError(f"sample_rate must be positive, got {self.sample_rate}")
        if self.samples.ndim not in (1, 2):
            raise ValueError(f"samples must be 1-D or 2-D, got shape {self.samples.shape}")

    @property
    def num_frames(self) -> int:
        return int(self.samples.shape[-1])

    @property
    def channels(self) -> int:
        return 1 if self.samples.ndim == 1 else int(self.samples.shape[0])

    @property
    def duration(self) -> float:
        return self.num_frames / self.sample_rate

    def scaled(self, gain: float) -> AudioClip:
        return AudioClip((self.samples * gain).astype(np.float32), self.sample_rate)

    def mono(self) -> AudioClip:
        if self.samples.ndim == 1:
            return self
        return AudioClip(self.samples.mean(axis=0).astype(np.float32), self.sample_rate)

    def resample(self, sample_rate: int) -> AudioClip:
        if sample_rate == self.sample_rate:
            return self
        import soxr  # ships with librosa; high-quality and fast

        data = self.samples.T if self.samples.ndim == 2 else self.samples
        out = soxr.resample(data, self.sample_rate, sample_rate).astype(np.float32)
        return AudioClip(out.T if self.samples.ndim == 2 else out, sample_rate)

    def slice(self, start: float, end: float) -> AudioClip:
        a = max(0, round(start * self.sample_rate))
        b = min(self.num_frames, round(end * self.sample_rate))
        return AudioClip(self.samples[..., a:b], self.sample_rate)

    @classmethod
    def silence(cls, seconds: float, sample_rate: int) -> AudioClip:
        return cls(np.zeros(round(seconds * sample_rate), np.float32), sample_rate)

    @classmethod
    def read(cls, path: str, sample_rate: int | None = None, mono: bool = True) -> AudioClip:
        import soundfile

        data, sr = soundfile.read(path, dtype="float32", always_2d=True)
        samples = data[:, 0] if data.shape[1] == 1 else data.T  # one channel is always 1-D
        clip = cls(np.ascontiguousarray(samples), int(sr))
        if mono:
            clip = clip.mono()
        return clip.resample(sample_rate) if sample_rate else clip

    def write(self, path: str) -> None:
        import soundfile

        data = self.samples.T if self.samples.ndim == 2 else self.samples
        with sound_file_errors_named(Path(path).parent):
            soundfile.write(path, data, self.sample_rate, subtype="PCM_16" if str(path).endswith(".wav") else None)

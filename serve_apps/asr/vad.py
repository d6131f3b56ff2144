"""Voice activity detection with Silero VAD v6 (the ONNX model shipped inside faster-whisper)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from octavia.audio import AudioClip
from octavia.records import TimeSpan

_WINDOW = 512  # samples per Silero frame at 16 kHz (32 ms)
_RATE = 16_000


class SileroVad:
    def __init__(self, model_path: str | Path) -> None:
        from faster_whisper.vad import SileroVADModel

        path = Path(model_path)
        self._model = SileroVADModel(str(path / "silero_vad_v6.onnx" if path.is_dir() else path))

    def speech_probabilities(self, audio: AudioClip) -> np.ndarray:
        """One speech probability per 32 ms frame."""
        samples = np.ascontiguousarray(audio.mono().resample(_RATE).samples, dtype=np.float32)
        padded = np.pad(samples, (0, _WINDOW - samples.shape[0] % _WINDOW))
        return np.asarray(self._model(padded)).reshape(-1)[: int(np.ceil(samples.shape[0] / _WINDOW))]

    def speech_spans(
        self,
        audio: AudioClip,
        *,
        threshold: float = 0.5,
        min_silence: float = 0.3,
        min_speech: float = 0.1,
        pad: float = 0.05,
    ) -> list[TimeSpan]:
        """Speech regions: frames above `threshold` start speech, frames below `threshold - 0.15` end it
        (hysteresis), gaps shorter than `min_silence` are bridged, blips shorter than `min_speech` dropped."""
        return spans_from_probabilities(
            self.speech_probabilities(audio), audio.duration, threshold=threshold, min_silence=min_silence,
            min_speech=min_speech, pad=pad,
        )  # fmt: skip


FRAME_SECONDS = _WINDOW / _RATE


def spans_from_probabilities(
    probs: np.ndarray,
    duration: float,
    *,
    threshold: float = 0.5,
    min_silence: float = 0.3,
    min_speech: float = 0.1,
    pad: float = 0.05,
) -> list[TimeSpan]:
    """`SileroVad.speech_spans` from per-frame probabilities, e.g. computed piece by piece over a long input."""
    frame = FRAME_SECONDS
    low = max(threshold - 0.15, 0.01)
    spans: list[list[float]] = []
    speaking = False
    for i, p in enumerate(probs):
        t = i * frame
        if not speaking and p >= threshold:
            speaking = True
            if spans and t - spans[-1][1] < min_silence:
                spans[-1][1] = t + frame  # bridge a short pause
            else:
                spans.append([t, t + frame])
        elif speaking and p < low:
            speaking = False
        if speaking:
            spans[-1][1] = t + frame
    return [
        TimeSpan(start=round(max(0.0, a - pad), 3), end=round(min(duration, b + pad), 3))
        for a, b in spans
        if b - a >= min_speech
    ]

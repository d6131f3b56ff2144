"""Speaker embeddings: one L2-normalised vector per speech span, so that cosine similarity means "same voice".

Two offline embedders, both state dicts loaded with `torch.load(weights_only=True)`:
- CAM++ (3D-Speaker, zh+en, 192-d): the default; the stronger model.
- Resemblyzer's GE2E encoder (256-d): a small LSTM kept as a fallback.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from octavia.audio import AudioClip
from octavia.errors import ModelIntegrityError, ModelNotAvailableError
from octavia.records import TimeSpan
from serve_apps.diarize.engine import SpeakerEmbedder

SAMPLE_RATE = 16_000


def _span_samples(clip: AudioClip, span: TimeSpan, min_seconds: float) -> np.ndarray:
    samples = clip.slice(span.start, span.end).samples
    if samples.size == 0:
        raise ValueError(f"span {span.start:.3f}-{span.end:.3f} s holds no audio (clip lasts {clip.duration:.3f} s)")
    minimum = int(min_seconds * clip.sample_rate)
    if samples.size < minimum:  # too short for the network: repeat it, which keeps the voice statistics
        samples = np.tile(samples, int(np.ceil(minimum / samples.size)))[:minimum]
    return samples


def _normalise(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return (vectors / np.maximum(norms, 1e-12)).astype(np.float32)


def _load_state_dict(path: Path, model_name: str) -> dict:
    import torch

    if not path.is_file():
        raise ModelNotAvailableError(
            f"no {model_name} weights at {path}; get them with `octavia models fetch {model_name}`",
            details={"path": str(path), "model": model_name},
        )
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # UnpicklingError, RuntimeError (bad zip), ...: all mean "not plain weights"
        raise ModelIntegrityError(
            f"{path} is not a plain {model_name} state dict: {exc}", details={"path": str(path)}
        ) from exc


class CamPlusPlusEmbedder(SpeakerEmbedder):
    """CAM++ on 80-bin Kaldi log-mel filterbanks with per-span mean normalisation, as 3D-Speaker extracts them."""

    dimension = 192
    # Cosine distance below which two windows are taken to be one speaker (average linkage); fitted on espeak
    # voices and typical of CAM++ verification thresholds (same-speaker cosine similarity > ~0.5).
    distance_threshold = 0.6
    weights_name = "campplus_cn_en_common.pt"
    min_seconds = 0.5

    def __init__(self, model: str | Path, *, device: str = "cpu", batch_size: int = 16) -> None:
        import torch

        from serve_apps.diarize.campplus import CAMPPlus

        path = Path(model)
        if path.is_dir():
            path = path / self.weights_name
        network = CAMPPlus(feat_dim=80, embedding_size=self.dimension)
        network.load_state_dict(_load_state_dict(path, "campplus-sv-zh-en"), strict=True)
        self._network = network.eval().to(torch.device(device))
        self._device = torch.device(device)
        self._batch_size = batch_size

    def _features(self, samples: np.ndarray):
        import torch
        import torchaudio.compliance.kaldi as kaldi

        fbank = kaldi.fbank(torch.from_numpy(samples)[None], num_mel_bins=80, sample_frequency=SAMPLE_RATE, dither=0.0)
        return fbank - fbank.mean(dim=0, keepdim=True)

    def embed(self, audio: AudioClip, spans: list[TimeSpan]) -> np.ndarray:
        """One embedding per span; span times are seconds from the start of `audio`."""
        import torch

        if not spans:
            return np.zeros((0, self.dimension), np.float32)
        clip = audio.mono().resample(SAMPLE_RATE)
        features = [self._features(_span_samples(clip, span, self.min_seconds)) for span in spans]
        out = np.zeros((len(spans), self.dimension), np.float32)
        # Batch spans of equal length (most windows are) so no padding changes the pooled statistics.
        by_length: dict[int, list[int]] = {}
        for i, f in enumerate(features):
            by_length.setdefault(f.shape[0], []).append(i)
        with torch.inference_mode():
            for indices in by_length.values():
                for b in range(0, len(indices), self._batch_size):
                    batch = indices[b : b + self._batch_size]
                    x = torch.stack([features[i] for i in batch]).to(self._device)
                    out[batch] = self._network(x).cpu().numpy()
        return _normalise(out)


class ResemblyzerEmbedder(SpeakerEmbedder):
    """Resemblyzer's GE2E voice encoder (3-layer LSTM over 40-bin mel power spectra), rebuilt here.

    The `resemblyzer` package cannot be imported without `webrtcvad` (its preprocessing VAD); segmentation does
    that job here, so only the network and its mel settings (resemblyzer/hparams.py) are reproduced. Spans longer
    than the encoder's 1.6 s partials are cut into partials whose embeddings are averaged, as
    `VoiceEncoder.embed_utterance` does.
    """

    dimension = 256
    distance_threshold = 0.35  # GE2E embeddings are non-negative, so cosine distances are compressed
    weights_name = "pretrained.pt"
    min_seconds = 0.5
    mel_channels = 40
    window_samples = 400  # 25 ms
    hop_samples = 160  # 10 ms
    partial_frames = 160  # 1.6 s
    partial_hop_frames = 77  # resemblyzer's default rate of 1.3 partials per second
    target_dbfs = -30.0

    def __init__(self, model: str | Path, *, device: str = "cpu") -> None:
        import torch
        from torch import nn

        path = Path(model)
        if path.is_dir():
            path = path / self.weights_name
        checkpoint = _load_state_dict(path, "resemblyzer-encoder")
        state = checkpoint.get("model_state", checkpoint)
        network = nn.ModuleDict(
            {
                "lstm": nn.LSTM(self.mel_channels, 256, num_layers=3, batch_first=True),
                "linear": nn.Linear(256, self.dimension),
            }
        )
        # The checkpoint also holds GE2E's training-only similarity scale and bias; everything we build must load.
        network.load_state_dict({k: v for k, v in state.items() if k.split(".")[0] in network}, strict=True)
        self._network = network.eval().to(torch.device(device))
        self._device = torch.device(device)

    def _mel(self, samples: np.ndarray) -> np.ndarray:
        import librosa

        rms = float(np.sqrt(np.mean(samples.astype(np.float64) ** 2)))
        if rms > 0:  # resemblyzer raises quiet audio to -30 dBFS (and never lowers it)
            gain_db = self.target_dbfs - 20 * np.log10(rms)
            if gain_db > 0:
                samples = samples * np.float32(10 ** (gain_db / 20))
        mel = librosa.feature.melspectrogram(
            y=samples,
            sr=SAMPLE_RATE,
            n_fft=self.window_samples,
            hop_length=self.hop_samples,
            n_mels=self.mel_channels,
        )
        return mel.astype(np.float32).T  # (frames, mels); GE2E uses power, not log, mels

    def _partials(self, mel: np.ndarray) -> np.ndarray:
        if mel.shape[0] <= self.partial_frames:
            return mel[None]
        starts = range(0, mel.shape[0] - self.partial_frames + 1, self.partial_hop_frames)
        return np.stack([mel[s : s + self.partial_frames] for s in starts])

    def embed(self, audio: AudioClip, spans: list[TimeSpan]) -> np.ndarray:
        """One embedding per span; span times are seconds from the start of `audio`."""
        import torch

        if not spans:
            return np.zeros((0, self.dimension), np.float32)
        clip = audio.mono().resample(SAMPLE_RATE)
        partials = [self._partials(self._mel(_span_samples(clip, span, self.min_seconds))) for span in spans]
        owners = np.concatenate([np.full(len(p), i) for i, p in enumerate(partials)])
        flat = [p for group in partials for p in group]
        partial_embeddings = np.zeros((len(flat), self.dimension), np.float32)
        by_length: dict[int, list[int]] = {}
        for i, mel in enumerate(flat):
            by_length.setdefault(mel.shape[0], []).append(i)
        with torch.inference_mode():
            for indices in by_length.values():
                batch = torch.from_numpy(np.stack([flat[i] for i in indices])).to(self._device)
                _, (hidden, _) = self._network["lstm"](batch)
                raw = torch.relu(self._network["linear"](hidden[-1]))
                partial_embeddings[indices] = _normalise(raw.cpu().numpy())
        # A span's embedding is the mean of its partials' (unit) embeddings, re-normalised below.
        out = np.zeros((len(spans), self.dimension), np.float32)
        np.add.at(out, owners, partial_embeddings)
        return _normalise(out)


EMBEDDERS: dict[str, type[CamPlusPlusEmbedder] | type[ResemblyzerEmbedder]] = {
    "campplus-sv-zh-en": CamPlusPlusEmbedder,
    "resemblyzer-encoder": ResemblyzerEmbedder,
}


def load_speaker_embedder(name: str, model_dir: str | Path, **options: object) -> SpeakerEmbedder:
    """The embedder for catalogue model `name`, loaded from its directory (`ModelStore().resolve(name)`)."""
    try:
        cls = EMBEDDERS[name]
    except KeyError:
        raise ModelNotAvailableError(
            f"no speaker embedder for model {name!r}; available: {', '.join(sorted(EMBEDDERS))}",
            details={"model": name, "available": sorted(EMBEDDERS)},
        ) from None
    return cls(model_dir, **options)  # type: ignore[arg-type]

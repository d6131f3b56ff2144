"""The quality profile's diarizer: pyannote's end-to-end speaker-diarization pipeline (community-1 by default).

The pipeline is gated on the Hugging Face hub: users accept its conditions once and set HF_TOKEN. It is meant
for GPUs; on CPU it works but is slow.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

import numpy as np

from octavia.audio import AudioClip
from octavia.errors import ModelNotAvailableError
from octavia.records import Diarization, SpeakerTurn
from serve_apps.diarize.clustering import speaker_name
from serve_apps.diarize.engine import DiarizationEngine

SAMPLE_RATE = 16_000
DEFAULT_PIPELINE = "pyannote/speaker-diarization-community-1"
# Pickled checkpoints a pipeline directory may hold; each must pass the weights-only check before pyannote,
# which unpickles them without restriction, sees them.
_PICKLED_SUFFIXES = (".bin", ".ckpt", ".pt", ".pth")


def import_pyannote_audio() -> Any:
    """Import pyannote.audio with its usage telemetry off unless the user opted in.

    pyannote.audio 4 posts usage spans to otel.pyannote.ai by default; a self-hosted dubbing server should not
    phone home (and offline it would only time out). An explicit PYANNOTE_METRICS_ENABLED wins.
    """
    os.environ.setdefault("PYANNOTE_METRICS_ENABLED", "false")
    import pyannote.audio

    return pyannote.audio


def _local_pipeline_dir(pipeline: str | Path, token: str | None) -> Path:
    path = Path(pipeline)
    if path.is_dir():
        return path
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(repo_id=str(pipeline), token=token))
    except Exception as exc:  # offline, gated without a token, unknown repo: all surface as "not available"
        raise ModelNotAvailableError(
            f"could not get the pyannote pipeline {pipeline!r} from the Hugging Face hub: {exc}. Accept its "
            "conditions on huggingface.co, set HF_TOKEN, and make sure the hub is reachable; offline, use the "
            "offline profile (`--profile offline`).",
            details={"pipeline": str(pipeline)},
        ) from exc


def diarization_from_annotation(annotation: Any, duration: float | None = None) -> Diarization:
    """A pyannote `Annotation` as our `Diarization`, speakers renamed SPEAKER_00, 01, ... by first appearance.

    Turns are clipped to [0, `duration`]: pyannote pads the last window, and its turns can run past the end.
    """
    end_of_audio = float("inf") if duration is None else duration
    tracks = sorted(
        (
            (max(float(segment.start), 0.0), min(float(segment.end), end_of_audio), str(label))
            for segment, _, label in annotation.itertracks(yield_label=True)
        ),
        key=lambda track: (track[0], track[1]),
    )
    names: dict[str, str] = {}
    turns = []
    for start, end, label in tracks:
        if round(end, 3) > round(start, 3):
            name = names.setdefault(label, speaker_name(len(names)))
            turns.append(SpeakerTurn(start=round(start, 3), end=round(end, 3), speaker=name))
    return Diarization(turns=tuple(turns))


class PyannotePipelineDiarizer(DiarizationEngine):
    """pyannote.audio `Pipeline` (hub id or local directory) behind our `DiarizationEngine` interface.

    A hub id is downloaded first (with `token`, default $HF_TOKEN) so that every pickled checkpoint in it can be
    checked with `weights_only=True` before pyannote loads it. Turns come from the pipeline's exclusive
    (overlap-free) diarization, which is what dubbing needs: one voice at a time.
    """

    def __init__(self, pipeline: str | Path = DEFAULT_PIPELINE, *, token: str | None = None, device: str = "auto"):
        import torch

        from serve_apps.diarize.pyannet import read_checkpoint

        token = token or os.environ.get("HF_TOKEN") or None
        local = _local_pipeline_dir(pipeline, token)
        for path in sorted(local.rglob("*")):
            if path.suffix in _PICKLED_SUFFIXES and path.is_file():
                read_checkpoint(path.read_bytes(), path)  # refuses anything beyond tensors and specifications
        pyannote_audio = import_pyannote_audio()
        loaded = pyannote_audio.Pipeline.from_pretrained(local, token=token)
        if loaded is None:
            raise ModelNotAvailableError(
                f"pyannote could not load a pipeline from {local}", details={"path": str(local)}
            )
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self._pipeline = loaded.to(torch.device(device))
        self._lock = threading.Lock()  # pyannote does not promise that a pipeline runs two calls at once

    def diarize(self, audio: AudioClip, num_speakers: int | None = None) -> Diarization:
        import torch

        if num_speakers is not None and num_speakers < 1:
            raise ValueError(f"num_speakers must be at least 1, got {num_speakers}")
        clip = audio.mono().resample(SAMPLE_RATE)
        if clip.num_frames == 0:
            return Diarization(turns=())
        waveform = torch.from_numpy(np.ascontiguousarray(clip.samples, dtype=np.float32))[None]
        with self._lock:
            output = self._pipeline({"waveform": waveform, "sample_rate": SAMPLE_RATE}, num_speakers=num_speakers)
        # pyannote 4 returns a DiarizeOutput; legacy pipelines return the Annotation itself.
        if hasattr(output, "exclusive_speaker_diarization"):
            return diarization_from_annotation(output.exclusive_speaker_diarization, clip.duration)
        return diarization_from_annotation(getattr(output, "speaker_diarization", output), clip.duration)

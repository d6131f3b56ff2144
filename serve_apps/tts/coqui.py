"""Coqui TTS models (the `TTS` package, coqui-tts): XTTS v2 voice cloning for the quality profile, or any model.

Loading goes through coqui's own `Synthesizer`, which reads checkpoints with `trainer.io.load_fsspec`:
`torch.load(..., weights_only=True)` on torch >= 2.4 (XTTS adds only its config classes with
`torch.serialization.safe_globals`), so a checkpoint cannot run code when it is read.
"""

from __future__ import annotations

import json
import re
import tempfile
import threading
from pathlib import Path
from typing import Any

import numpy as np

from octavia.audio import AudioClip
from octavia.errors import ModelNotAvailableError
from octavia.records import Voice
from serve_apps.tts.engine import TtsEngine, check_speed, check_text, pick_language, unknown_voice

# Voice id meaning "speak in the voice of the `reference` clip" on models that clone voices.
REFERENCE_VOICE = "reference"
# Voice id of a model that has exactly one speaker.
DEFAULT_VOICE = "default"
# Models that load themselves from their directory (several files) rather than from one checkpoint file.
_DIRECTORY_MODELS = {"xtts", "tortoise", "bark"}
_CHECKPOINT_NAMES = ("model.pth", "best_model.pth", "model_file.pth", "checkpoint.pth")


def find_checkpoint(model_dir: Path) -> Path:
    """The checkpoint file of a coqui model directory: a conventional name, else the latest checkpoint_<step>."""
    for name in _CHECKPOINT_NAMES:
        if (model_dir / name).is_file():
            return model_dir / name
    steps = {
        int(m.group(1)): p for p in model_dir.glob("checkpoint_*.pth") if (m := re.search(r"_(\d+)\.pth$", p.name))
    }
    if steps:
        return steps[max(steps)]
    others = sorted(model_dir.glob("*.pth"))
    if len(others) == 1:
        return others[0]
    raise ModelNotAvailableError(
        f"no coqui checkpoint in {model_dir}: expected one of {', '.join(_CHECKPOINT_NAMES)} or checkpoint_<step>.pth "
        "next to config.json",
        details={"model_dir": str(model_dir)},
    )


class CoquiEngine(TtsEngine):
    """A coqui model from a directory with config.json + its checkpoint (XTTS: model.pth, vocab.json, ...).

    Voices: "reference" on models that clone (XTTS, YourTTS), each named speaker of a multi-speaker model, or
    "default" for a single-speaker one. When the model clones and a `reference` clip is given, it speaks in that
    clip's voice whatever voice is named; voice "reference" without a clip is a ValueError.
    """

    name = "coqui"

    def __init__(
        self, model_dir: str | Path, *, languages: tuple[str, ...] | None = None, device: str = "auto"
    ) -> None:
        from TTS.utils.synthesizer import Synthesizer

        model_dir = Path(model_dir)
        config_path = model_dir / "config.json"
        if not config_path.is_file():
            raise ModelNotAvailableError(f"no config.json in {model_dir}", details={"model_dir": str(model_dir)})
        model_type = json.loads(config_path.read_text()).get("model", "")
        checkpoint = model_dir if model_type in _DIRECTORY_MODELS else find_checkpoint(model_dir)
        synthesizer = Synthesizer(tts_checkpoint=checkpoint, tts_config_path=config_path, use_cuda=_use_cuda(device))
        self._setup(synthesizer, languages)

    @classmethod
    def from_name(
        cls, model_name: str, *, languages: tuple[str, ...] | None = None, device: str = "auto"
    ) -> CoquiEngine:
        """Load a model by coqui's name (e.g. "tts_models/multilingual/multi-dataset/xtts_v2"), downloading it
        with coqui's model manager: needs network access, and for XTTS `COQUI_TOS_AGREED=1` (its licence)."""
        from TTS.api import TTS

        api = TTS(model_name, progress_bar=False)
        if api.synthesizer is None:
            raise ModelNotAvailableError(f"coqui model {model_name!r} is not a text-to-speech model")
        if _use_cuda(device):
            api.to("cuda")
        engine = cls.__new__(cls)
        engine._setup(api.synthesizer, languages)
        return engine

    def _setup(self, synthesizer: Any, languages: tuple[str, ...] | None) -> None:
        self._synthesizer = synthesizer
        self._lock = threading.Lock()  # a call sets the model's length_scale for its speed: one call at a time
        model = synthesizer.tts_model
        config = synthesizer.tts_config
        self.sample_rate = int(synthesizer.output_sample_rate)
        self.clones = bool(getattr(config, "supports_cloning", False))
        model_languages = list(model.language_manager.language_names) if model.language_manager else []
        self._multilingual = len(model_languages) > 1 or config.model in _DIRECTORY_MODELS
        if model_languages:
            # Coqui names some languages by region ("zh-cn"): key them by ISO 639-1 as well.
            self._languages: dict[str, str | None] = {name.lower(): name for name in model_languages}
            self._languages.update({name.split("-")[0].lower(): name for name in model_languages})
        else:
            declared = languages or ((config.get("phoneme_language") or "").split("-")[0],)
            if not declared[0]:
                raise ValueError("this coqui model does not say which language it speaks: pass languages=(...)")
            self._languages = {lang: None for lang in declared}
        if languages:
            self._languages = {k: v for k, v in self._languages.items() if k.split("-")[0] in languages}
        speakers = list(model.speaker_manager.speaker_names) if getattr(model, "speaker_manager", None) else []
        self._voice_ids = tuple(
            ([REFERENCE_VOICE] if self.clones else []) + speakers + ([] if self.clones or speakers else [DEFAULT_VOICE])
        )

    def voices(self, language: str | None = None) -> tuple[Voice, ...]:
        if language is None:
            languages = tuple(sorted(k for k in self._languages if "-" not in k))
        else:
            languages = (pick_language(self.name, language, self._languages)[0],)
        return tuple(Voice(id=v, engine=self.name, languages=languages) for v in self._voice_ids)

    def synthesize(
        self, text: str, language: str, voice: str, *, speed: float = 1.0, reference: AudioClip | None = None
    ) -> AudioClip:
        from TTS.utils.synthesizer import PAD_SILENCE_SAMPLES

        text = check_text(text)
        speed = check_speed(speed)
        _, model_language = pick_language(self.name, language, self._languages)
        if voice not in self._voice_ids:
            raise unknown_voice(self.name, voice, self._voice_ids)
        if voice == REFERENCE_VOICE and reference is None:
            raise ValueError(f"voice {REFERENCE_VOICE!r} clones the speaker of `reference`: give a reference clip")
        speaker = voice if voice not in (REFERENCE_VOICE, DEFAULT_VOICE) else None
        with tempfile.TemporaryDirectory(prefix="octavia-tts-") as tmp:
            speaker_wav = None
            if reference is not None and self.clones:
                speaker_wav = str(Path(tmp) / "reference.wav")  # coqui reads the reference from a file
                reference.mono().write(speaker_wav)
                speaker = None
            with self._lock:
                samples = self._run(text, speaker, speaker_wav, model_language if self._multilingual else None, speed)
        # The synthesizer pads every sentence with silence; keep the pauses between sentences, not the last one.
        if samples.size > PAD_SILENCE_SAMPLES:
            samples = samples[:-PAD_SILENCE_SAMPLES]
        return AudioClip(samples, self.sample_rate)

    def _run(
        self, text: str, speaker: str | None, speaker_wav: str | None, language: str | None, speed: float
    ) -> np.ndarray:
        model = self._synthesizer.tts_model
        kwargs: dict[str, Any] = {}
        length_scale = getattr(model, "length_scale", None)
        if isinstance(length_scale, float | int):
            model.length_scale = length_scale / speed  # VITS-like models: longer phonemes are slower speech
        elif speed != 1.0:
            kwargs["speed"] = speed  # XTTS takes it as an inference setting
        try:
            wav = self._synthesizer.tts(
                text, speaker_name=speaker, language_name=language, speaker_wav=speaker_wav, **kwargs
            )
        finally:
            if isinstance(length_scale, float | int):
                model.length_scale = length_scale
        return np.asarray(wav, dtype=np.float32).ravel()


def _use_cuda(device: str) -> bool:
    if device == "auto":
        import torch

        return bool(torch.cuda.is_available())
    if device not in ("cpu", "cuda"):
        raise ValueError(f"device must be auto, cpu or cuda, got {device!r}")
    return device == "cuda"

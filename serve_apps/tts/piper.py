"""Piper (VITS exported to ONNX) voices, one voice per model file."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np

from octavia.audio import AudioClip
from octavia.records import Gender, Voice
from serve_apps.tts.engine import TtsEngine, check_speed, check_text, pick_language, unknown_voice

# Piper's config has no gender or pitch: what we know of the voices we ship. Median f0 measured once with
# `python -m serve_apps.tts.measure` (pYIN over the voiced frames of voices.MEASURE_TEXT at speed 1.0).
KNOWN_VOICES: dict[str, tuple[Gender, float]] = {
    "en_US-joe-medium": ("male", 82.9),
}


class PiperEngine(TtsEngine):
    """Piper voices from `<name>.onnx` + `<name>.onnx.json` files in one or more model directories."""

    name = "piper"

    def __init__(self, *model_dirs: str | Path) -> None:
        from piper import PiperVoice

        if not model_dirs:
            raise ValueError("give at least one Piper model directory")
        self._models: dict[str, PiperVoice] = {}
        self._lock = threading.Lock()  # Piper phonemizes with espeak-ng, whose state is global: one call at a time
        self._voices: list[Voice] = []
        for model_dir in model_dirs:
            onnx_files = sorted(Path(model_dir).glob("*.onnx"))
            if not onnx_files:
                raise FileNotFoundError(f"no Piper .onnx voice in {model_dir}")
            for onnx in onnx_files:
                model = PiperVoice.load(onnx, config_path=f"{onnx}.json")
                voice_id = onnx.stem
                gender, f0 = KNOWN_VOICES.get(voice_id, ("unknown", None))
                language = model.config.espeak_voice.split("-")[0]
                self._models[voice_id] = model
                self._voices.append(
                    Voice(id=voice_id, engine=self.name, languages=(language,), gender=gender, median_f0_hz=f0)
                )

    def voices(self, language: str | None = None) -> tuple[Voice, ...]:
        if language is None:
            return tuple(self._voices)
        code, _ = pick_language(self.name, language, {lang: None for v in self._voices for lang in v.languages})
        return tuple(v for v in self._voices if code in v.languages)

    def synthesize(
        self, text: str, language: str, voice: str, *, speed: float = 1.0, reference: AudioClip | None = None
    ) -> AudioClip:
        """`reference` is ignored: each Piper voice is one fixed speaker."""
        from piper import SynthesisConfig

        text = check_text(text)
        code, _ = pick_language(self.name, language, {lang: None for v in self._voices for lang in v.languages})
        if voice not in self._models:
            raise unknown_voice(self.name, voice, self._models)
        record = next(v for v in self._voices if v.id == voice)
        if code not in record.languages:
            ids = [v.id for v in self._voices if code in v.languages]
            raise ValueError(f"Piper voice {voice!r} speaks {', '.join(record.languages)}, not {code!r}; use {ids}")
        model = self._models[voice]
        # length_scale stretches phoneme durations: the voice's own scale divided by the speed-up.
        config = SynthesisConfig(length_scale=model.config.length_scale / check_speed(speed))
        with self._lock:
            chunks = [c.audio_float_array for c in model.synthesize(text, config)]
        if not chunks:
            raise ValueError(f"text {text!r} has nothing to speak")
        return AudioClip(np.concatenate(chunks).astype(np.float32), model.config.sample_rate)

"""Kokoro-82M (int8 ONNX) through kokoro-onnx, fed espeak-ng phonemes."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from octavia.audio import AudioClip
from octavia.records import Gender, Voice
from serve_apps.tts.engine import TtsEngine, check_speed, check_text, pick_language, unknown_voice

# ISO 639-1 (or regional tag) -> espeak-ng language the phonemizer uses. Whisper-base transcribes en, es, it and pt
# back verbatim in every voice we tried; French is good in jm_kumo and jf_gongitsune but garbled at times in
# jf_alpha and jf_tebukuro, whose Japanese accent is the strongest (jf_alpha's English is sometimes heard as Japanese).
ESPEAK_LANGUAGES = {
    "en": "en-us",
    "en-us": "en-us",
    "en-gb": "en-gb",
    "es": "es",
    "fr": "fr-fr",
    "it": "it",
    "pt": "pt-br",
    "pt-br": "pt-br",
    "pt-pt": "pt",
}

# Median f0 of each voice, measured once with `python -m serve_apps.tts.measure` (pYIN over the voiced frames of
# voices.MEASURE_TEXT in en-us spoken at speed 1.0). The "jf_"/"jm_" prefix is Kokoro's female/male naming.
MEDIAN_F0_HZ = {
    "jf_alpha": 272.5,
    "jf_gongitsune": 229.2,
    "jf_nezumi": 238.6,
    "jf_tebukuro": 322.2,
    "jm_kumo": 93.1,
}


def _gender(voice_id: str) -> Gender:
    """Kokoro names voices <language letter><f|m>_<name>: "jf_alpha" is a Japanese female voice."""
    kind = voice_id.split("_", 1)[0][-1:]
    if kind == "f":
        return "female"
    return "male" if kind == "m" else "unknown"


class KokoroEngine(TtsEngine):
    """Kokoro from a model directory holding kokoro.int8.onnx (or kokoro.onnx), voices.npz and vocab.json."""

    name = "kokoro"

    def __init__(self, model_dir: str | Path, *, cpu_threads: int = 0) -> None:
        """`cpu_threads`: ONNX Runtime intra-op threads (0: its default, one per core). One thread per replica
        and one replica per core synthesises more lines per second than one replica on every core (the graph
        is small; docs/benchmarks.md)."""
        import onnxruntime as ort
        from kokoro_onnx import Kokoro
        from kokoro_onnx.session import resolve_providers

        model_dir = Path(model_dir)
        onnx = next((p for p in (model_dir / "kokoro.int8.onnx", model_dir / "kokoro.onnx") if p.exists()), None)
        if onnx is None:
            raise FileNotFoundError(f"no kokoro.int8.onnx or kokoro.onnx in {model_dir}")
        vocab = model_dir / "vocab.json"
        options = ort.SessionOptions()
        if cpu_threads > 0:
            options.intra_op_num_threads = cpu_threads
            options.inter_op_num_threads = 1
        session = ort.InferenceSession(str(onnx), sess_options=options, providers=resolve_providers())
        # np.load of the .npz inside Kokoro keeps allow_pickle=False: the voice file cannot run code.
        self._kokoro = Kokoro.from_session(
            session, str(model_dir / "voices.npz"), vocab_config=str(vocab) if vocab.exists() else None
        )
        self._voice_ids = tuple(sorted(self._kokoro.get_voices()))
        languages = tuple(sorted({k for k in ESPEAK_LANGUAGES if "-" not in k}))
        self._voices = tuple(
            Voice(id=v, engine=self.name, languages=languages, gender=_gender(v), median_f0_hz=MEDIAN_F0_HZ.get(v))
            for v in self._voice_ids
        )

    def voices(self, language: str | None = None) -> tuple[Voice, ...]:
        if language is not None:
            pick_language(self.name, language, ESPEAK_LANGUAGES)
        return self._voices

    def synthesize(
        self, text: str, language: str, voice: str, *, speed: float = 1.0, reference: AudioClip | None = None
    ) -> AudioClip:
        """`reference` is ignored: Kokoro speaks with its fixed voice styles."""
        text = check_text(text)
        _, espeak_language = pick_language(self.name, language, ESPEAK_LANGUAGES)
        if voice not in self._voice_ids:
            raise unknown_voice(self.name, voice, self._voice_ids)
        samples, sample_rate = self._kokoro.create(text, voice, speed=check_speed(speed), lang=espeak_language)
        return AudioClip(np.asarray(samples, dtype=np.float32).ravel(), int(sample_rate))

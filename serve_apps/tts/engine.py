"""Text to speech: a line of text in a voice, as audio.

Implementations: `kokoro.KokoroEngine`, `piper.PiperEngine`, `espeak.EspeakEngine` (offline) and
`coqui.CoquiEngine` (XTTS v2 voice cloning for the quality profile, or any coqui model directory).

Every engine follows the same contract:
- `language` is an ISO 639-1 code ("en", "es"; "en-GB" style tags are accepted where the engine has the variant).
  A language the engine cannot speak raises `UnsupportedLanguageError` naming the ones it can.
- An unknown `voice` raises `ValueError` naming the voices there are.
- Text with nothing to speak (empty, whitespace, punctuation only) raises `ValueError`: a dubbing line that is
  empty is a bug upstream, and silently returning silence would hide it. Callers that want a gap make one
  with `AudioClip.silence`.
- `speed` must be within [0.5, 2.0] (1.0 is the voice's natural rate); the result is mono float32.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, TypeVar

from octavia.audio import AudioClip
from octavia.errors import UnsupportedLanguageError
from octavia.records import Voice

if TYPE_CHECKING:
    from octavia.models.store import ModelStore

T = TypeVar("T")

MIN_SPEED = 0.5
MAX_SPEED = 2.0


class TtsEngine(ABC):
    """A replica may call `synthesize` from several threads at once (`engine_workers`): an implementation that
    cannot run calls side by side serializes them itself (Kokoro's phonemizer holds its own lock)."""

    name: str

    @abstractmethod
    def voices(self, language: str | None = None) -> tuple[Voice, ...]:
        """The voices this engine has, for one ISO 639-1 language or all of them."""

    @abstractmethod
    def synthesize(
        self, text: str, language: str, voice: str, *, speed: float = 1.0, reference: AudioClip | None = None
    ) -> AudioClip:
        """Speak `text`. `reference` is a clip of the source speaker for engines that clone voices."""

    def languages(self) -> tuple[str, ...]:
        """ISO 639-1 codes this engine can speak."""
        return tuple(sorted({lang for v in self.voices() for lang in v.languages}))

    def supports(self, language: str) -> bool:
        try:
            return bool(self.voices(language))
        except UnsupportedLanguageError:
            return False


def check_text(text: str) -> str:
    stripped = " ".join(text.split())
    if not stripped:
        raise ValueError("text is empty: there is nothing to speak")
    return stripped


def check_speed(speed: float) -> float:
    if not MIN_SPEED <= speed <= MAX_SPEED:
        raise ValueError(f"speed must be between {MIN_SPEED} and {MAX_SPEED}, got {speed}")
    return float(speed)


def unsupported_language(engine: str, language: str, available: Iterable[str]) -> UnsupportedLanguageError:
    known = sorted(available)
    return UnsupportedLanguageError(
        f"TTS engine {engine!r} cannot speak {language!r}; it speaks: {', '.join(known)}",
        details={"engine": engine, "language": language, "available": known},
    )


def unknown_voice(engine: str, voice: str, available: Iterable[str]) -> ValueError:
    return ValueError(f"TTS engine {engine!r} has no voice {voice!r}; its voices are: {', '.join(available)}")


def pick_language(engine: str, language: str, table: Mapping[str, T]) -> tuple[str, T]:
    """Look `language` up in an engine's table keyed by ISO 639-1 code (and optional regional tags such as
    "en-gb"): returns (ISO 639-1 code, table value) or raises UnsupportedLanguageError naming the codes there are."""
    from octavia.languages import normalize

    tag = language.strip().lower().replace("_", "-")
    try:
        code = normalize(tag)
    except UnsupportedLanguageError:
        code = None
    if code is not None:
        if tag in table:
            return code, table[tag]
        if code in table:
            return code, table[code]
    raise unsupported_language(engine, language, (k for k in table if "-" not in k))


def load_engine(model: str, store: ModelStore | None = None, *, cpu_threads: int = 0) -> TtsEngine:
    """The engine for a TTS model of the catalogue (as listed in a profile's `tts`), its files from `store`.
    `cpu_threads` applies to Kokoro's ONNX Runtime session (0: its default)."""
    from octavia.models.store import ModelStore

    store = store or ModelStore()
    if model == "espeak-ng":
        from serve_apps.tts.espeak import EspeakEngine

        store.resolve(model)  # a clear "apt-get install espeak-ng" error when it is missing
        return EspeakEngine()
    if model.startswith("kokoro"):
        from serve_apps.tts.kokoro import KokoroEngine

        return KokoroEngine(store.resolve(model), cpu_threads=cpu_threads)
    if model.startswith("piper"):
        from serve_apps.tts.piper import PiperEngine

        return PiperEngine(store.resolve(model))
    if model.startswith("xtts"):
        from serve_apps.tts.coqui import CoquiEngine

        return CoquiEngine(store.resolve(model))
    raise ValueError(f"{model!r} is not a TTS model this package can load (kokoro*, piper*, espeak-ng, xtts*)")

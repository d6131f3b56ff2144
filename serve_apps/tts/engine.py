"""Text to speech: a line of text in a voice, as audio."""

from __future__ import annotations

from abc import ABC, abstractmethod

from octavia.audio import AudioClip
from octavia.records import Voice


class TtsEngine(ABC):
    name: str

    @abstractmethod
    def voices(self, language: str | None = None) -> tuple[Voice, ...]:
        """The voices this engine has, for one ISO 639-1 language or all of them."""

    @abstractmethod
    def synthesize(
        self, text: str, language: str, voice: str, *, speed: float = 1.0, reference: AudioClip | None = None
    ) -> AudioClip:
        """Speak `text`. `reference` is a clip of the source speaker for engines that clone voices."""

"""Machine translation: a batch of segments in, one `Translation` per segment out, segment ids kept."""

from __future__ import annotations

from abc import ABC, abstractmethod

from octavia.records import Translation, TranslationRequest


class TranslationEngine(ABC):
    name: str

    @abstractmethod
    def pairs(self) -> tuple[tuple[str, str], ...]:
        """(source, target) ISO 639-1 pairs this engine can translate."""

    @abstractmethod
    def translate(self, batch: list[TranslationRequest], source: str, target: str) -> list[Translation]:
        """Raises UnsupportedLanguagePairError (naming the available pairs) for a pair it cannot do."""

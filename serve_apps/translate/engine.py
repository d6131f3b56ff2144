"""Machine translation: a batch of segments in, one `Translation` per segment out, segment ids kept.

Engines: `ApertiumEngine` (offline, rule-based, `apertium.py`) and `MarianEngine` (quality, OPUS-MT through
transformers, `marian.py`). `create_translation_engine` maps a profile's `translation` value to one of them.
The dub sends whole sentences (a speaker's segments joined up to a full stop, `pipeline/sentences.py`), so an engine
sees what it was made for; `TranslationRequest.context_before/after` carry the sentences around it for engines that
can use them, which neither current one does (Apertium is sentence-local, OPUS-MT was trained on single sentences).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING

from octavia.errors import UnsupportedLanguagePairError
from octavia.records import Translation, TranslationRequest

if TYPE_CHECKING:
    from octavia.models.store import ModelStore


class TranslationEngine(ABC):
    name: str

    @abstractmethod
    def pairs(self) -> tuple[tuple[str, str], ...]:
        """(source, target) ISO 639-1 pairs this engine can translate."""

    @abstractmethod
    def translate(self, batch: list[TranslationRequest], source: str, target: str) -> list[Translation]:
        """Raises UnsupportedLanguagePairError (naming the available pairs) for a pair it cannot do."""

    def check_pair(self, source: str, target: str) -> None:
        available = self.pairs()
        if (source, target) not in available:
            listed = ", ".join(f"{s}->{t}" for s, t in available) or "none (install some, see `octavia models`)"
            raise UnsupportedLanguagePairError(
                f"{self.name} cannot translate {source}->{target}; available pairs: {listed}",
                details={"source": source, "target": target, "available": [f"{s}-{t}" for s, t in available]},
            )


def to_translations(batch: list[TranslationRequest], source: str, target: str, texts: list[str]) -> list[Translation]:
    """Pair each request with its translated text, in order."""
    if len(texts) != len(batch):
        raise ValueError(f"{len(texts)} translations for {len(batch)} requests")
    return [
        Translation(segment_id=r.segment_id, source_text=r.text, text=t, source_language=source, target_language=target)
        for r, t in zip(batch, texts, strict=True)
    ]


def create_translation_engine(family: str, *, store: ModelStore | None = None) -> TranslationEngine:
    """The engine for a profile's `translation` value: "apertium" or "marian"."""
    if family == "apertium":
        from serve_apps.translate.apertium import ApertiumEngine

        return ApertiumEngine(store=store)
    if family == "marian":
        from serve_apps.translate.marian import MarianEngine

        return MarianEngine(store=store)
    raise ValueError(f"unknown translation engine {family!r}; choose apertium or marian")

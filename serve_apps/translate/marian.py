"""OPUS-MT (Marian) translation through transformers (quality profile).

One model per language pair, loaded on first use and kept by this engine instance. A model reference is a local
directory (`save_pretrained` layout), a catalogue name ("opus-mt-en-es": the model store's copy, fetched into the
store on first use) or a hub id ("Helsinki-NLP/opus-mt-en-es"). Multi-target models such as opus-mt-en-ROMANCE get
their `>>xx<<` target token prepended. Sentence context is not used: OPUS-MT models were trained on single
sentences.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from octavia.errors import ModelNotAvailableError, UnsupportedLanguagePairError
from octavia.models.catalog import CATALOG
from octavia.models.store import ModelStore
from octavia.records import Translation, TranslationRequest
from serve_apps.translate.engine import TranslationEngine, to_translations

# Languages OPUS-MT's ROMANCE models cover that have no direct opus-mt-* entry in the catalogue.
ROMANCE_ONLY = ("pt", "ca", "gl", "ro")


def default_models() -> dict[tuple[str, str], str]:
    """(source, target) -> catalogue name, from the catalogue's opus-mt-* entries."""
    models: dict[tuple[str, str], str] = {}
    for name, spec in CATALOG.items():
        if spec.task == "translation" and name.startswith("opus-mt-"):
            source, target = spec.languages
            if "ROMANCE" not in (source, target):
                models[(source, target)] = name
    for lang in ROMANCE_ONLY:
        models.setdefault(("en", lang), "opus-mt-en-ROMANCE")
        models.setdefault((lang, "en"), "opus-mt-ROMANCE-en")
    return models


class MarianEngine(TranslationEngine):
    name = "marian"

    def __init__(
        self,
        models: Mapping[tuple[str, str], str | Path] | None = None,
        *,
        store: ModelStore | None = None,
        device: str = "auto",
        batch_size: int = 16,
        num_beams: int = 4,
        max_new_tokens: int = 256,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        self._models = dict(models) if models is not None else default_models()
        self._store = store or ModelStore()
        self._device = device
        self._batch_size = batch_size
        self._num_beams = num_beams
        self._max_new_tokens = max_new_tokens
        self._loaded: dict[str, tuple[Any, Any]] = {}

    def pairs(self) -> tuple[tuple[str, str], ...]:
        return tuple(sorted(self._models))

    def _locate(self, reference: str | Path) -> str:
        if Path(reference).is_dir():
            return str(reference)
        name = str(reference)
        if name in self._store.catalog:
            # Fetched through the store on first use, so its files are hash-pinned like every other model.
            if not self._store.status(name).ok:
                self._store.fetch(name)
            return str(self._store.resolve(name))
        return name

    def _load(self, reference: str | Path) -> tuple[Any, Any]:
        key = str(reference)
        if key not in self._loaded:
            import torch
            from transformers import MarianMTModel, MarianTokenizer

            location = self._locate(reference)
            try:
                tokenizer = MarianTokenizer.from_pretrained(location)
                model = MarianMTModel.from_pretrained(location)
            except OSError as exc:  # transformers reports missing files and failed downloads as OSError
                raise ModelNotAvailableError(
                    f"Marian model {key!r} could not be loaded from {location!r}: {exc}. Fetch it while online "
                    "(`octavia models fetch <name>`) or use the offline profile (Apertium).",
                    details={"model": key},
                ) from exc
            device = self._device
            if device == "auto":
                device = "cuda" if torch.cuda.is_available() else "cpu"
            self._loaded[key] = (tokenizer, model.to(device).eval())
        return self._loaded[key]

    def translate(self, batch: list[TranslationRequest], source: str, target: str) -> list[Translation]:
        import torch

        self.check_pair(source, target)
        tokenizer, model = self._load(self._models[(source, target)])
        prefix = ""
        codes = getattr(tokenizer, "supported_language_codes", [])
        if codes:
            token = f">>{target}<<"
            if token not in codes:
                raise UnsupportedLanguagePairError(
                    f"model for {source}->{target} has no target token {token}; it knows {', '.join(codes)}",
                    details={"source": source, "target": target},
                )
            prefix = token + " "

        texts = ["" for _ in batch]
        todo = [i for i, r in enumerate(batch) if r.text.strip()]
        for start in range(0, len(todo), self._batch_size):
            chunk = todo[start : start + self._batch_size]
            inputs = tokenizer(
                [prefix + batch[i].text.strip() for i in chunk], return_tensors="pt", padding=True, truncation=True
            ).to(model.device)
            with torch.inference_mode():
                generated = model.generate(**inputs, num_beams=self._num_beams, max_new_tokens=self._max_new_tokens)
            for i, text in zip(chunk, tokenizer.batch_decode(generated, skip_special_tokens=True), strict=True):
                texts[i] = text.strip()
        return to_translations(batch, source, target, texts)

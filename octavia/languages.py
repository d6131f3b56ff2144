"""Language codes: ISO 639-1 inside Octavia, ISO 639-2/B on audio tracks (what players show)."""

from __future__ import annotations

from functools import cache

from octavia.errors import UnsupportedLanguageError


@cache
def _lookup(code: str):  # type: ignore[no-untyped-def]
    import pycountry

    code = code.strip().lower()
    if len(code) == 2:
        return pycountry.languages.get(alpha_2=code)
    if len(code) == 3:
        return pycountry.languages.get(alpha_3=code) or pycountry.languages.get(bibliographic=code)
    return None


def normalize(code: str) -> str:
    """'es', 'ES', 'spa', 'es-MX' -> 'es'. Raises UnsupportedLanguageError for anything else."""
    base = code.replace("_", "-").split("-")[0]
    lang = _lookup(base)
    if lang is None or not getattr(lang, "alpha_2", None):
        raise UnsupportedLanguageError(f"{code!r} is not an ISO 639 language code", details={"language": code})
    return str(lang.alpha_2)


def iso639_2(code: str) -> str:
    """The ISO 639-2 (bibliographic where one exists, e.g. 'fre', 'ger') tag for an audio or subtitle track."""
    if code.strip().lower() == "und":  # undetermined: a track with no known language
        return "und"
    lang = _lookup(normalize(code))
    return str(getattr(lang, "bibliographic", None) or lang.alpha_3)


def iso639_3(code: str) -> str:
    return str(_lookup(normalize(code)).alpha_3)


def display_name(code: str) -> str:
    return str(_lookup(normalize(code)).name)

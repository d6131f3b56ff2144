from __future__ import annotations

import pytest

from octavia.errors import UnsupportedLanguageError
from octavia.languages import iso639_2, normalize


@pytest.mark.parametrize(
    ("code", "expected"),
    [("es", "spa"), ("en", "eng"), ("fr", "fre"), ("de", "ger"), ("pt-BR", "por"), ("spa", "spa"), ("ZH", "chi")],
)
def test_track_tags_are_iso639_2(code, expected):
    assert iso639_2(code) == expected


@pytest.mark.parametrize(("code", "expected"), [("es_MX", "es"), ("fre", "fr"), ("eng", "en"), (" It ", "it")])
def test_normalize(code, expected):
    assert normalize(code) == expected


@pytest.mark.parametrize("code", ["xx", "klingon", "", "e"])
def test_unknown_codes_are_refused(code):
    with pytest.raises(UnsupportedLanguageError):
        normalize(code)

"""ApertiumEngine with the real installed language pairs."""

from __future__ import annotations

import pytest

from octavia.errors import UnsupportedLanguagePairError
from octavia.records import TranslationRequest
from serve_apps.translate.apertium import ApertiumEngine
from serve_apps.translate.engine import create_translation_engine


@pytest.fixture(scope="module")
def engine(model_store) -> ApertiumEngine:
    return ApertiumEngine(store=model_store)


def _batch(ids: list[int], texts: list[str]) -> list[TranslationRequest]:
    return [TranslationRequest(segment_id=i, text=t) for i, t in zip(ids, texts, strict=True)]


def test_english_to_spanish_keeps_ids_order_and_empty_segments(engine) -> None:
    ids = [40, 2, 17, 5, 9]
    texts = ["The house is big.", "", "I have two dogs.", "The book is red.", "The cat sleeps."]
    out = engine.translate(_batch(ids, texts), "en", "es")

    assert [t.segment_id for t in out] == ids
    assert [t.source_text for t in out] == texts
    assert all(t.source_language == "en" and t.target_language == "es" for t in out)
    assert "casa" in out[0].text.lower() and "grande" in out[0].text.lower()
    assert out[1].text == ""
    assert "perros" in out[2].text.lower()
    assert "libro" in out[3].text.lower() and "rojo" in out[3].text.lower()
    assert "gato" in out[4].text.lower()


def test_words_never_move_between_segments(engine) -> None:
    # In plain-text mode Apertium reorders across lines ("big\nhouse" -> "Casa\ngrande"); blocks keep them apart.
    out = engine.translate(_batch([1, 2, 3], ["big", "house", "Hello, world!\nThe red car; fast."]), "en", "es")

    assert out[0].text.lower() == "grande"
    assert out[1].text.lower() == "casa"
    assert "mundo" in out[2].text and "\n" in out[2].text and "coche" in out[2].text


def test_markup_like_text_is_translated_as_text(engine) -> None:
    out = engine.translate(_batch([0, 1], ['<p id="s1">The dog</p> & the cat', "The house."]), "en", "es")

    assert "perro" in out[0].text and "&" in out[0].text and '<p id="s1">' in out[0].text
    assert "casa" in out[1].text.lower()


def test_pivot_through_spanish_gives_portuguese(engine) -> None:
    assert ("en", "pt") in engine.pairs() and ("en", "pt") not in [("en", "es"), ("es", "pt")]
    out = engine.translate(_batch([3, 8], ["The house is big.", "I have two dogs."]), "en", "pt")

    assert [t.segment_id for t in out] == [3, 8]
    assert out[0].text.lower() == "a casa é grande."
    assert "cães" in out[1].text


def test_no_space_before_a_full_stop(engine) -> None:
    out = engine.translate(_batch([0], ["The woman who lives next door is my teacher."]), "en", "es")
    assert out[0].text.endswith(" es mi profesora."), out[0].text


def test_spanish_to_english(engine) -> None:
    out = engine.translate(_batch([0], ["La casa es grande."]), "es", "en")
    assert out[0].text == "The house is big."


def test_unsupported_pair_names_the_available_pairs(engine) -> None:
    with pytest.raises(UnsupportedLanguagePairError) as err:
        engine.translate(_batch([0], ["Hello."]), "en", "ja")
    assert "en->ja" in err.value.message
    assert "en->es" in err.value.message and "en->pt" in err.value.message
    assert "en-es" in err.value.details["available"]


def test_profile_value_maps_to_apertium(model_store) -> None:
    assert isinstance(create_translation_engine("apertium", store=model_store), ApertiumEngine)
    with pytest.raises(ValueError, match="apertium or marian"):
        create_translation_engine("google")


def test_a_lost_segment_marker_raises_instead_of_shifting_translations(model_store, tmp_path) -> None:
    from octavia.errors import ModelError

    fake = tmp_path / "apertium"
    fake.write_text("#!/bin/sh\nsed 's|<p id=\"s1\">[^<]*</p>||'\n")  # an "apertium" that drops block s1
    fake.chmod(0o755)
    engine = ApertiumEngine(store=model_store, executable=str(fake))
    with pytest.raises(ModelError, match="refusing to guess"):
        engine.translate(_batch([0, 1, 2], ["One.", "Two.", "Three."]), "en", "es")

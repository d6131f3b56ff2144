from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from octavia.records import Segment
from pipeline.sentences import (
    Sentence,
    ends_sentence,
    join_sentences,
    sentence_requests,
    share_out,
    translate_segments,
)
from serve_apps.translate.apertium import ApertiumEngine


def segment(id: int, start: float, end: float, text: str, speaker: str | None = "SPEAKER_00") -> Segment:
    return Segment(id=id, start=start, end=end, text=text, speaker=speaker)


# What Whisper made of the Spanish sample: one sentence cut at a pause, in two segments.
SPANISH = (
    segment(2, 7.51, 9.09, " Háblenos de su nuevo libro.", "SPEAKER_00"),
    segment(3, 9.88, 11.94, " Es una historia sobre un pueblo,", "SPEAKER_01"),
    segment(4, 12.56, 13.84, " pequeño junto al mar.", "SPEAKER_01"),
    segment(5, 15.01, 16.35, " ¿De dónde vino la idea?", "SPEAKER_00"),
)


def test_a_sentence_cut_at_a_pause_is_joined_again():
    sentences = join_sentences(SPANISH)
    assert [s.segment_ids for s in sentences] == [(2,), (3, 4), (5,)]
    assert sentences[1].text == "Es una historia sobre un pueblo, pequeño junto al mar."


def test_a_new_speaker_a_long_pause_or_a_full_stop_starts_a_new_sentence():
    segments = (
        segment(0, 0.0, 1.0, "She bought a small", "A"),
        segment(1, 1.2, 2.0, "red car", "B"),  # another speaker
        segment(2, 4.0, 5.0, "yesterday", "B"),  # 2 s later
        segment(3, 5.1, 6.0, "in town.", "B"),
        segment(4, 6.1, 7.0, "It was cheap", "B"),  # after a full stop
        segment(5, 7.1, 8.0, "   ", "B"),  # nothing said
        segment(6, 8.1, 9.0, "and fast!", "B"),
    )
    assert [s.segment_ids for s in join_sentences(segments)] == [(0,), (1,), (2, 3), (4, 6)]


def test_a_transcript_without_punctuation_is_cut_into_bounded_sentences():
    segments = [segment(i, i * 2.0, i * 2.0 + 1.5, "and then we walked along the river for a while") for i in range(40)]
    sentences = join_sentences(segments, max_chars=200)
    assert sum(len(s.segment_ids) for s in sentences) == 40
    assert all(len(s.text) <= 200 for s in sentences)
    assert len(sentences) == 10


@pytest.mark.parametrize(
    ("text", "ends"),
    [("Hi.", True), ("Really?", True), ('He said "go!"', True), ("(see above.)", True), ("下雨了。", True),
     ("so...", False), ("and…", False), ("well,", False), ("and", False), ("3.5", False)],
)  # fmt: skip
def test_ends_sentence(text, ends):
    assert ends_sentence(text) is ends


def test_share_out_follows_the_source_proportions_and_prefers_punctuation():
    assert share_out("Compró un coche rojo pequeño ayer.", [18, 18]) == ("Compró un coche", "rojo pequeño ayer.")
    assert share_out("Hola, amigo mío, qué tal estás hoy.", [5, 30]) == ("Hola,", "amigo mío, qué tal estás hoy.")
    # the comma one word off the proportional cut wins
    assert share_out("I saw him there, and then we left at once.", [20, 22]) == (
        "I saw him there,",
        "and then we left at once.",
    )
    assert share_out("Sí.", [30, 4]) == ("Sí.", "")
    assert share_out("我们今天去海边散步吧", [1, 1]) == ("我们今天去", "海边散步吧")
    assert share_out("Hello there.", [5]) == ("Hello there.",)


@given(
    words=st.lists(st.text(st.characters(categories=("L", "P")), min_size=1, max_size=8), max_size=30),
    weights=st.lists(st.integers(0, 80), min_size=1, max_size=6),
)
def test_share_out_keeps_every_character_once_and_in_order(words, weights):
    text = " ".join(words)
    pieces = share_out(text, weights)
    assert len(pieces) == len(weights)
    assert "".join(pieces).replace(" ", "") == text.replace(" ", "")
    if len(words) >= len(weights):
        assert all(pieces)


@given(
    words=st.lists(st.text(st.characters(categories=("L", "P"), max_codepoint=0x24F), min_size=1), max_size=30),
    weights=st.lists(st.integers(0, 80), min_size=1, max_size=6),
)
def test_spaced_text_is_cut_only_between_words(words, weights):
    pieces = share_out(" ".join(words), weights)
    assert " ".join(p for p in pieces if p).split() == " ".join(words).split()


@pytest.fixture(scope="module")
def apertium(model_store) -> ApertiumEngine:
    return ApertiumEngine(store=model_store)


def test_a_split_sentence_is_translated_whole_then_shared_out(apertium):
    """Piece by piece Apertium says "Compró un pequeño" / "Coche rojo ayer." and "La mujer quién vive puerta
    próxima" / "Es mi profesor." (the agreement with "woman" is lost across the cut)."""
    segments = (
        segment(0, 0.0, 1.4, " She bought a small"),
        segment(1, 1.9, 3.0, " red car yesterday."),
        segment(2, 3.2, 3.6, " "),
        segment(3, 4.0, 5.6, " The woman who lives next door"),
        segment(4, 6.0, 7.0, " is my teacher."),
    )
    batches: list[tuple[int, int]] = []
    out = translate_segments(
        segments, "en", "es", lambda batch: apertium.translate(batch, "en", "es"), batch=1,
        on_batch=lambda done, total: batches.append((done, total)),
    )  # fmt: skip

    assert [t.segment_id for t in out] == [0, 1, 3, 4]
    assert [t.source_text for t in out] == [s.text for s in segments if s.text.strip()]
    assert all((t.source_language, t.target_language) == ("en", "es") for t in out)
    assert f"{out[0].text} {out[1].text}" == "Compró un coche rojo pequeño ayer."
    assert f"{out[2].text} {out[3].text}".endswith(" es mi profesora.")
    assert all(t.text for t in out)
    assert batches == [(0, 2), (1, 2), (2, 2)]  # two sentences, one per call


def test_the_same_language_is_passed_through():
    def refuse(batch):
        raise AssertionError("nothing to translate")

    out = translate_segments(SPANISH, "es", "es", refuse)
    assert [(t.segment_id, t.text, t.target_language) for t in out] == [(s.id, s.text, "es") for s in SPANISH]


def test_requests_carry_the_neighbouring_sentences_as_context():
    sentences = (
        Sentence(segment_ids=(4,), parts=("Hello.",)),
        Sentence(segment_ids=(5, 6), parts=("How are", "you?")),
        Sentence(segment_ids=(9,), parts=("Fine.",)),
    )
    requests = sentence_requests(sentences)
    assert [(r.segment_id, r.text) for r in requests] == [(4, "Hello."), (5, "How are you?"), (9, "Fine.")]
    assert (requests[1].context_before, requests[1].context_after) == ("Hello.", "Fine.")
    assert (requests[0].context_before, requests[2].context_after) == ("", "")

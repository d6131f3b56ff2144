import pytest

from octavia.errors import UnsupportedLanguagePairError
from octavia.records import Segment
from pipeline.chunking import Chunk
from pipeline.dub import check_pairs, detection_confidence, forced_language_warning
from pipeline.records import ChunkAnalysis
from pipeline.stages import language_check_chunks

PAIRS = {("en", "es"), ("es", "en"), ("es", "pt")}


def analysis(
    index: int,
    language: str,
    probability: float,
    speech: list[tuple[float, float]],
    heard: tuple[str, float] | None = None,
) -> ChunkAnalysis:
    """`heard`: what the ASR detected beside a transcription forced into `language`."""
    segments = tuple(Segment(id=i, start=a, end=b, text="x") for i, (a, b) in enumerate(speech))
    return ChunkAnalysis(
        chunk=Chunk(start=index * 60.0, end=(index + 1) * 60.0, index=index),
        language=language,
        language_probability=probability,
        segments=segments,
        windows=(),
        embeddings_key="k",
        stems_key=None,
        detected_language=heard[0] if heard else None,
        detected_language_probability=heard[1] if heard else 0.0,
    )


def test_confidence_is_the_speech_weighted_probability_of_the_chunks_that_heard_the_language():
    analyses = [
        analysis(0, "ja", 0.5, [(0.0, 30.0)]),  # 30 s of speech
        analysis(1, "ja", 0.8, [(60.0, 70.0)]),  # 10 s
        analysis(2, "en", 0.99, [(120.0, 180.0)]),  # another language: not counted
    ]
    assert detection_confidence(analyses, "ja") == pytest.approx((0.5 * 30 + 0.8 * 10) / 40)
    assert detection_confidence(analyses, "en") == pytest.approx(0.99)
    assert detection_confidence(analyses, "fr") == 0.0


def test_a_detected_language_without_a_pair_says_how_sure_the_detection_was_and_how_to_name_the_language():
    with pytest.raises(UnsupportedLanguagePairError) as info:
        check_pairs("offline", "ja", ["es"], PAIRS, detected_confidence=0.526)
    message = info.value.message
    assert "detected as ja (confidence 53%)" in message
    assert "--from LANG" in message and "source_language" in message
    assert "available pairs: en->es, es->en, es->pt" in message
    assert info.value.details["detected_confidence"] == 0.526
    assert (info.value.details["source"], info.value.details["target"]) == ("ja", "es")


def test_a_named_language_without_a_pair_is_not_called_detected():
    with pytest.raises(UnsupportedLanguagePairError) as info:
        check_pairs("offline", "en", ["pt"], PAIRS)
    expected = "the offline profile cannot translate en -> pt; available pairs: en->es, es->en, es->pt"
    assert info.value.message == expected
    assert "detected_confidence" not in info.value.details


def test_reachable_targets_and_re_voicing_pass():
    check_pairs("offline", "es", ["en", "pt", "es"], PAIRS, detected_confidence=0.9)
    check_pairs("offline", None, ["es", "pt"], PAIRS)
    with pytest.raises(UnsupportedLanguagePairError, match="any language -> fr"):
        check_pairs("offline", None, ["fr"], PAIRS)


def test_a_given_source_the_speech_contradicts_is_warned_about_with_how_sure_the_asr_was():
    english = [
        analysis(0, "es", 1.0, [(0.0, 40.0)], heard=("en", 0.95)),
        analysis(1, "es", 1.0, [(60.0, 70.0)], heard=("es", 0.6)),  # 10 s heard otherwise: outvoted
    ]
    warning = forced_language_warning(english, "es")
    assert warning is not None and "'es'" in warning and "'en' (95% sure)" in warning and "--from" in warning
    assert forced_language_warning(english, "en") is None  # what was given is what is heard


def test_no_warning_when_the_asr_is_unsure_or_did_not_check():
    unsure = [analysis(0, "pt", 1.0, [(0.0, 40.0)], heard=("es", 0.7))]  # accented speech: close languages
    assert forced_language_warning(unsure, "pt") is None
    unchecked = [analysis(0, "es", 1.0, [(0.0, 40.0)])]  # detected, not forced; or an English-only model
    assert forced_language_warning(unchecked, "es") is None
    assert forced_language_warning([analysis(0, "es", 1.0, [], heard=None)], "es") is None  # no speech


def speaking(*seconds: float) -> list[Chunk]:
    """Minute-long chunks with these seconds of speech."""
    return [Chunk(index=i, start=i * 60.0, end=(i + 1) * 60.0, vad_speech_seconds=s) for i, s in enumerate(seconds)]


def test_one_chunk_in_four_with_speech_is_checked_the_one_with_the_most():
    chunks = speaking(10, 50, 20, 30, 5, 0, 0, 45, 1, 2)
    # Speaking chunks 0-4, 7-9 in groups of four: (0, 1, 2, 3) -> 1, (4, 7, 8, 9) -> 7.
    assert language_check_chunks(chunks) == {1, 7}
    assert language_check_chunks(chunks, every=1) == {0, 1, 2, 3, 4, 7, 8, 9}


def test_a_music_intro_does_not_use_up_the_check_of_a_short_input():
    # Two minutes of music, then speech: chunks 0 and 1 hear none. Checking chunk 0 would check nothing.
    assert language_check_chunks(speaking(0, 0, 42)) == {2}


def test_an_input_without_speech_checks_no_chunk():
    assert language_check_chunks(speaking(0, 0)) == set()
    assert language_check_chunks([]) == set()

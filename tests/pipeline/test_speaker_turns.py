from __future__ import annotations

import itertools

from hypothesis import given
from hypothesis import strategies as st

from octavia.records import Diarization, Segment, SpeakerTurn, Word
from pipeline.speaker_turns import split_at_speaker_changes


def words(*spec: tuple[str, float, float]) -> tuple[Word, ...]:
    return tuple(Word(text=f" {text}", start=start, end=end) for text, start, end in spec)


# What an 8 kHz clip gave: one Whisper segment over a question and its answer, a pause between them.
QUESTION_AND_ANSWER = Segment(
    id=7, start=0.18, end=5.57, text="Good morning welcome to the show. Thank you. It is great to be here.",
    words=words(("Good", 0.18, 0.64), ("morning", 0.64, 1.0), ("welcome", 1.0, 1.56), ("to", 1.56, 1.8),
                ("the", 1.8, 1.9), ("show.", 1.9, 2.3), ("Thank", 3.43, 3.95), ("you.", 3.95, 4.21),
                ("It", 4.43, 4.51), ("is", 4.51, 4.63), ("great", 4.63, 4.91), ("to", 4.91, 5.13),
                ("be", 5.13, 5.27), ("here.", 5.27, 5.57)),
    avg_logprob=-0.2,
)  # fmt: skip
TWO_TURNS = Diarization(
    turns=(SpeakerTurn(start=0.0, end=2.6, speaker="SPEAKER_00"), SpeakerTurn(start=3.2, end=6.0, speaker="SPEAKER_01"))
)


def test_a_question_and_its_answer_become_two_lines_with_their_own_speakers():
    first, second = split_at_speaker_changes([QUESTION_AND_ANSWER], TWO_TURNS)
    assert (first.id, first.speaker, first.text) == (0, "SPEAKER_00", "Good morning welcome to the show.")
    assert (second.id, second.speaker, second.text) == (1, "SPEAKER_01", "Thank you. It is great to be here.")
    assert (first.start, first.end, second.start, second.end) == (0.18, 2.3, 3.43, 5.57)
    assert first.words + second.words == QUESTION_AND_ANSWER.words
    assert second.avg_logprob == -0.2


def test_one_speaker_keeps_the_segment_whole():
    one = Diarization(turns=(SpeakerTurn(start=0.0, end=6.0, speaker="SPEAKER_03"),))
    [segment] = split_at_speaker_changes([QUESTION_AND_ANSWER], one)
    assert segment == QUESTION_AND_ANSWER.model_copy(update={"id": 0, "speaker": "SPEAKER_03"})


def test_a_blip_shorter_than_a_turn_joins_its_neighbour():
    blip = Diarization(
        turns=(SpeakerTurn(start=0.0, end=1.58, speaker="A"), SpeakerTurn(start=1.58, end=1.85, speaker="B"),
               SpeakerTurn(start=1.85, end=6.0, speaker="A"))
    )  # fmt: skip
    [segment] = split_at_speaker_changes([QUESTION_AND_ANSWER], blip)
    assert segment.speaker == "A" and segment.text == QUESTION_AND_ANSWER.text


def test_words_in_a_pause_between_turns_go_with_the_speaker_before():
    gapped = Diarization(
        turns=(SpeakerTurn(start=0.0, end=1.9, speaker="A"), SpeakerTurn(start=4.3, end=6.0, speaker="B"))
    )
    first, second = split_at_speaker_changes([QUESTION_AND_ANSWER], gapped)
    assert first.text == "Good morning welcome to the show. Thank you." and first.speaker == "A"
    assert second.text == "It is great to be here." and second.speaker == "B"


def test_nobody_speaking_leaves_the_speaker_unknown():
    [segment] = split_at_speaker_changes([QUESTION_AND_ANSWER], Diarization(turns=()))
    assert segment.speaker is None


@given(st.lists(st.tuples(st.floats(0.0, 6.0), st.sampled_from("ABC")), max_size=8))
def test_every_word_is_kept_once_in_order_and_every_piece_lasts(cuts):
    boundaries = sorted(t for t, _ in cuts)
    edges = [0.0, *boundaries, 6.0]
    turns = tuple(
        SpeakerTurn(start=a, end=b, speaker=label)
        for a, b, (_, label) in zip(edges, edges[1:], [(0.0, "A"), *cuts], strict=False)
        if b > a
    )
    pieces = split_at_speaker_changes([QUESTION_AND_ANSWER], Diarization(turns=turns))
    assert tuple(w for p in pieces for w in p.words) == QUESTION_AND_ANSWER.words
    assert [p.id for p in pieces] == list(range(len(pieces)))
    if len(pieces) > 1:
        assert all(p.words[-1].end - p.words[0].start >= 0.5 for p in pieces)
        assert all(a.speaker != b.speaker for a, b in itertools.pairwise(pieces))


def test_each_segment_finds_its_turns_among_many_in_any_order():
    later = QUESTION_AND_ANSWER.model_copy(
        update={"start": 100.18, "end": 105.57,
                "words": tuple(w.model_copy(update={"start": w.start + 100, "end": w.end + 100})
                               for w in QUESTION_AND_ANSWER.words)}
    )  # fmt: skip
    # Unsorted; a long turn that starts well before the second segment still covers its question.
    turns = (
        SpeakerTurn(start=103.2, end=106.0, speaker="B"),
        *(SpeakerTurn(start=10.0 + i, end=10.5 + i, speaker="C") for i in range(50)),
        SpeakerTurn(start=0.0, end=2.6, speaker="A"),
        SpeakerTurn(start=3.2, end=6.0, speaker="B"),
        SpeakerTurn(start=70.0, end=102.6, speaker="A"),
    )
    pieces = split_at_speaker_changes([QUESTION_AND_ANSWER, later], Diarization(turns=turns))
    assert [(p.speaker, p.start) for p in pieces] == [("A", 0.18), ("B", 3.43), ("A", 100.18), ("B", 103.43)]

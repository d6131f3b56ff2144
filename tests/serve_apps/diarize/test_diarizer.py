from __future__ import annotations

import itertools

import numpy as np
import pytest

from octavia.audio import AudioClip
from octavia.records import Diarization
from serve_apps.diarize.engine import ClusteringDiarizer, offline_diarizer


def correctly_labelled_fraction(diarization: Diarization, truth, duration: float) -> float:
    """Share of true speech time given the right speaker, under the best mapping of found to true speakers."""
    grid = np.arange(0.0, duration, 0.01) + 0.005
    reference = np.full(grid.shape, -1)
    for span, speaker in truth:
        reference[(grid >= span.start) & (grid < span.end)] = speaker
    found = sorted(diarization.speakers)
    hypothesis = np.full(grid.shape, -1)
    for turn in diarization.turns:
        hypothesis[(grid >= turn.start) & (grid < turn.end)] = found.index(turn.speaker)
    speech = reference >= 0
    size = max(len(found), 2)
    best = 0.0
    for mapping in itertools.permutations(range(size)):
        mapped = np.where(hypothesis >= 0, np.take(mapping, np.maximum(hypothesis, 0)), -1)
        best = max(best, float(np.mean(mapped[speech] == reference[speech])))
    return best


@pytest.fixture(scope="module")
def diarizer(segmentation, campplus):
    return ClusteringDiarizer(segmentation, campplus)


@pytest.mark.parametrize("num_speakers", [None, 2])
def test_two_speaker_conversation(diarizer, conversation, num_speakers, no_network):
    result = diarizer.diarize(conversation.audio, num_speakers=num_speakers)

    assert result.speakers == ("SPEAKER_00", "SPEAKER_01")
    assert correctly_labelled_fraction(result, conversation.truth, conversation.audio.duration) >= 0.85
    first_line = conversation.truth[0][0]
    assert result.speaker_at(first_line) == "SPEAKER_00"  # numbered by first appearance
    starts = [t.start for t in result.turns]
    assert starts == sorted(starts)
    assert all(0.0 <= t.start < t.end <= conversation.audio.duration + 1e-3 for t in result.turns)
    # Turns are speech, not the gaps: the silence between lines stays unlabelled.
    for (a, _), (b, _) in itertools.pairwise(conversation.truth):
        gap_middle = (a.end + b.start) / 2
        assert not any(t.start < gap_middle < t.end for t in result.turns)


def test_chunks_embedded_apart_are_clustered_together(diarizer, conversation):
    """The long-video path: chunks embedded independently (in parallel), speakers clustered over all of them."""
    audio, truth = conversation.audio, conversation.truth
    cut = (truth[1][0].end + truth[2][0].start) / 2  # in the silence after the first A, B exchange
    first, second = audio.slice(0.0, cut), audio.slice(cut, audio.duration)

    parts = [diarizer.embed_speech(second, offset=cut), diarizer.embed_speech(first)]  # any order
    assert all(w.start >= cut for w in parts[0].windows)
    result = diarizer.assign_speakers(parts)

    assert result.speakers == ("SPEAKER_00", "SPEAKER_01")
    assert correctly_labelled_fraction(result, truth, audio.duration) >= 0.85
    # The same voice keeps one name across the chunk boundary.
    assert result.speaker_at(truth[0][0]) == result.speaker_at(truth[2][0]) == "SPEAKER_00"
    assert result.speaker_at(truth[1][0]) == result.speaker_at(truth[3][0]) == "SPEAKER_01"


def test_output_is_json_round_trippable(diarizer, conversation):
    result = diarizer.diarize(conversation.audio)
    assert Diarization.model_validate_json(result.model_dump_json()) == result


def test_silence_and_tiny_inputs_have_no_speakers(diarizer):
    assert diarizer.diarize(AudioClip.silence(2.0, 16_000)).turns == ()
    assert diarizer.diarize(AudioClip.silence(0.01, 16_000)).turns == ()
    assert diarizer.diarize(AudioClip.silence(0.0, 16_000)).turns == ()


def test_bad_arguments(diarizer, segmentation, campplus):
    with pytest.raises(ValueError):
        diarizer.diarize(AudioClip.silence(1.0, 16_000), num_speakers=0)
    with pytest.raises(ValueError):
        ClusteringDiarizer(segmentation, campplus, window=1.0, step=1.5)


def test_offline_diarizer_uses_the_offline_profile_models(model_store):
    diarizer = offline_diarizer(model_store)
    assert diarizer.embedder.dimension == 192  # CAM++
    assert diarizer.segmentation.num_local_speakers == 3  # segmentation-3.0
    assert diarizer.threshold == diarizer.embedder.distance_threshold

from __future__ import annotations

import numpy as np
import pytest

from octavia.records import SpeakerTurn, TimeSpan
from serve_apps.diarize.clustering import cluster_speakers, embedding_windows, turns_from_windows
from tests.serve_apps.diarize.conftest import unit_rows


def blobs(centers: list[int], per_blob: int = 6, dimension: int = 32, spread: float = 0.05, seed: int = 0):
    """Embeddings around orthogonal directions (one per speaker), in the order given by `centers`."""
    rng = np.random.default_rng(seed)
    axes = np.eye(dimension)
    rows = [axes[c] + spread * rng.standard_normal(dimension) for c in centers for _ in range(per_blob)]
    return unit_rows(np.array(rows))


def test_three_separated_speakers_are_found_without_being_told():
    x = blobs([0, 1, 2])
    labels = cluster_speakers(x)
    assert labels.tolist() == [0] * 6 + [1] * 6 + [2] * 6


def test_labels_follow_order_of_first_appearance():
    # Speaker "axis 5" talks first, then "axis 2", then "axis 5" again, then "axis 9".
    x = np.concatenate([blobs([5], 3, seed=1), blobs([2], 3, seed=2), blobs([5], 3, seed=3), blobs([9], 3, seed=4)])
    assert cluster_speakers(x).tolist() == [0, 0, 0, 1, 1, 1, 0, 0, 0, 2, 2, 2]


def test_a_fixed_number_of_speakers_is_honoured():
    x = blobs([0, 1, 2])
    assert sorted(set(cluster_speakers(x, num_speakers=2).tolist())) == [0, 1]
    four = cluster_speakers(x, num_speakers=4)
    assert len(set(four.tolist())) == 4
    assert cluster_speakers(x, num_speakers=3).tolist() == cluster_speakers(x).tolist()


def test_one_voice_is_one_speaker():
    x = blobs([3], per_blob=10, spread=0.1)
    assert cluster_speakers(x).tolist() == [0] * 10
    assert cluster_speakers(x[:1]).tolist() == [0]
    assert cluster_speakers(np.zeros((0, 8))).tolist() == []


def test_a_stray_window_joins_the_nearest_speaker_instead_of_becoming_one():
    x = blobs([0, 1], per_blob=8)
    stray = unit_rows((np.eye(32)[0] + 1.2 * np.eye(32)[7])[None])  # far from both, but nearer speaker 0
    labels = cluster_speakers(np.concatenate([x, stray]), threshold=0.3)
    assert labels.tolist() == [0] * 8 + [1] * 8 + [0]
    # With two speakers requested, the stray window does not take the place of a real speaker.
    assert cluster_speakers(np.concatenate([x, stray]), num_speakers=2).tolist() == [0] * 8 + [1] * 8 + [0]


def test_bad_arguments_are_rejected():
    x = blobs([0, 1], per_blob=2)
    with pytest.raises(ValueError):
        cluster_speakers(x, num_speakers=0)
    with pytest.raises(ValueError):
        cluster_speakers(x, num_speakers=5)
    with pytest.raises(ValueError):
        cluster_speakers(x[0])


def test_windows_tile_each_segment_without_crossing_it():
    segments = [TimeSpan(start=0.0, end=1.0), TimeSpan(start=2.0, end=5.0)]
    windows = embedding_windows(segments, window=1.5, step=0.75)
    assert windows[0] == segments[0]
    assert [(w.start, w.end) for w in windows[1:]] == [(2.0, 3.5), (2.75, 4.25), (3.5, 5.0)]
    with pytest.raises(ValueError):
        embedding_windows(segments, window=1.0, step=2.0)


def test_turns_take_the_nearest_window_and_merge_same_speaker_pieces():
    windows = [
        TimeSpan(start=0.0, end=1.5),
        TimeSpan(start=0.75, end=2.25),
        TimeSpan(start=1.5, end=3.0),
        TimeSpan(start=4.0, end=5.0),
    ]
    turns = turns_from_windows(windows, [0, 0, 1, 1])
    # 0.75-2.25 and 1.5-3.0 overlap on 1.5-2.25: the first half is nearer the first window's centre (1.5).
    assert turns == [
        SpeakerTurn(start=0.0, end=1.875, speaker="SPEAKER_00"),
        SpeakerTurn(start=1.875, end=3.0, speaker="SPEAKER_01"),
        SpeakerTurn(start=4.0, end=5.0, speaker="SPEAKER_01"),
    ]
    assert turns_from_windows([], []) == []
    with pytest.raises(ValueError):
        turns_from_windows(windows, [0])

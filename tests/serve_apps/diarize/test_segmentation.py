from __future__ import annotations

import zipfile

import numpy as np
import pytest

from octavia.audio import AudioClip
from octavia.errors import ModelIntegrityError, ModelNotAvailableError
from octavia.records import TimeSpan
from serve_apps.diarize.segmentation import FrameActivity, SegmentationModel, speaker_segments
from tests.factories import concat, espeak
from tests.serve_apps.diarize.conftest import LOW, save_tiny_pyannote_model, tiny_pyannet, voiced_span

SR = 16_000


def noise(seconds: float, seed: int = 0) -> AudioClip:
    rng = np.random.default_rng(seed)
    return AudioClip((0.1 * rng.standard_normal(int(seconds * SR))).astype(np.float32), SR)


def test_tiny_pyannet_round_trips_through_pyannote_checkpoint_format(tmp_path, no_network):
    original = tiny_pyannet(window=5.0)
    save_tiny_pyannote_model(original, tmp_path / "tiny" / "pytorch_model.bin")

    model = SegmentationModel(tmp_path / "tiny")  # a directory, as the model store hands it out

    loaded = model.network.state_dict()
    assert set(loaded) == set(original.state_dict())
    assert all(np.array_equal(loaded[k].numpy(), v.numpy()) for k, v in original.state_dict().items())
    assert model.window_duration == 5.0
    assert model.num_local_speakers == 3
    # SincNet with stride 10: 270-sample hop and 991-sample receptive field at 16 kHz.
    assert model.frame_step == pytest.approx(270 / SR)
    assert model.frame_duration == pytest.approx(991 / SR)

    activity = model.activity(noise(3.0))
    assert activity.speakers.shape == (original.num_frames(3 * SR), 3)
    assert activity.speech.shape == (original.num_frames(3 * SR),)
    assert activity.step == pytest.approx(270 / SR)
    assert activity.duration == pytest.approx(991 / SR)
    assert set(np.unique(activity.speakers)) <= {0, 1}
    assert activity.speakers.sum(axis=1).max() <= 2  # powerset: at most two speakers at once
    assert activity.speech.min() >= 0.0 and activity.speech.max() <= 1.0
    assert set(activity.window) == {0}  # 3 s fit in one 5 s window
    assert activity.centers()[-1] == pytest.approx(3.0, abs=2 * activity.step)


def test_long_input_is_read_from_overlapping_windows(tmp_path):
    original = tiny_pyannet(window=5.0)
    model = SegmentationModel(save_tiny_pyannote_model(original, tmp_path / "pytorch_model.bin"), step=1.25)
    activity = model.activity(noise(12.0))
    assert activity.num_frames == original.num_frames(12 * SR)
    windows = activity.window
    assert np.all(np.diff(windows) >= 0)  # frames are read from successive windows, in order
    assert windows[0] == 0 and windows[-1] == int(np.ceil((12.0 - 5.0) / 1.25))
    # Each frame comes from the window it is most central in.
    centers = activity.centers()
    assert np.all(np.abs(centers - (windows * 1.25 + 2.5))[(centers > 2.5) & (centers < 9.5)] <= 1.25 / 2 + 0.02)


def test_refuses_a_checkpoint_that_would_run_code(tmp_path):
    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self):
            return (marker.write_text, ("ran",))

    checkpoint = tmp_path / "evil" / "pytorch_model.bin"
    checkpoint.parent.mkdir()
    import torch

    torch.save({"state_dict": {}, "payload": Exploit()}, checkpoint)
    with zipfile.ZipFile(checkpoint) as z:  # sanity: the file really carries the payload
        assert b"write_text" in z.read(next(n for n in z.namelist() if n.endswith("data.pkl")))
    with pytest.raises(ModelIntegrityError, match="not a plain pyannote checkpoint"):
        SegmentationModel(checkpoint.parent)
    assert not marker.exists()


def test_missing_checkpoint_says_how_to_get_it(tmp_path):
    with pytest.raises(ModelNotAvailableError, match=r"octavia models fetch pyannote-segmentation-3\.0"):
        SegmentationModel(tmp_path)


def test_real_segmentation_3_0_loads_from_the_store_offline(model_store, no_network):
    model = SegmentationModel(model_store.resolve("pyannote-segmentation-3.0"))
    assert model.window_duration == 10.0
    assert model.num_local_speakers == 3
    assert model.frame_step == pytest.approx(270 / SR)
    assert type(model.network).__name__ == "PyanNet"


def test_real_segmentation_finds_speech_where_it_is(segmentation, tmp_path, no_network):
    speech = espeak("The weather is lovely today, let us walk to the park.", tmp_path / "s.wav", **LOW).resample(SR)
    clip = concat(AudioClip.silence(1.0, SR), speech, AudioClip.silence(4.0, SR))
    truth = voiced_span(speech, offset=1.0)

    segments = segmentation.speaker_segments(clip)

    assert segments, "no speech found"
    assert segments[0].start == pytest.approx(truth.start, abs=0.3)
    assert segments[-1].end == pytest.approx(truth.end, abs=0.3)
    speech_time = sum(s.duration for s in segments)
    assert speech_time >= 0.8 * truth.duration
    assert all(truth.start - 0.3 <= s.start < s.end <= truth.end + 0.3 for s in segments)


def test_real_segmentation_finds_nothing_in_silence(segmentation):
    assert segmentation.speaker_segments(AudioClip.silence(3.0, SR)) == []


def _activity(speech: list[float], codes: list[int], windows: list[int] | None = None) -> FrameActivity:
    speakers = np.array([[(c >> k) & 1 for k in range(3)] for c in codes], np.uint8)
    window = np.array(windows if windows is not None else [0] * len(codes))
    return FrameActivity(np.array(speech, np.float32), speakers, window, 0.0, 0.1, 0.1)


def test_segments_split_at_speaker_changes_but_not_at_window_changes():
    # 1 s speaker A, 1 s speaker B (same window), then 1 s of "A" read from the next window: local labels of two
    # windows cannot be compared, so there is no cut at 2 s.
    activity = _activity([0.9] * 30, [1] * 10 + [2] * 10 + [1] * 10, [0] * 20 + [1] * 10)
    assert speaker_segments(activity, min_segment=0.3) == [TimeSpan(start=0.0, end=1.0), TimeSpan(start=1.0, end=3.0)]


def test_short_flickers_and_pauses_do_not_cut_segments():
    codes = [1] * 10 + [2] + [1] * 10  # one-frame flicker of another speaker
    speech = [0.9] * 5 + [0.2] + [0.9] * 15  # a 0.1 s dip below onset, shorter than min_silence
    segments = speaker_segments(_activity(speech, codes), min_silence=0.15, min_segment=0.3)
    assert segments == [TimeSpan(start=0.0, end=2.1)]
    with pytest.raises(ValueError):
        speaker_segments(_activity(speech, codes), onset=1.5)

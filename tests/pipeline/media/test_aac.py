from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile

from octavia.errors import MediaProcessingError
from pipeline.media.aac import FRAME, MIN_PART_SECONDS, EncodedAudio, adts_frames, encode_aac, mux_input_args
from pipeline.media.ffmpeg import run_ffmpeg

RATE = 48_000


@pytest.fixture(scope="module")
def track(tmp_path_factory) -> Path:
    """Stereo, long enough for three parts: a chord on the left, a gated tone and clicks on the right (transients
    are what a join would smear), a sweep on both. No noise: AAC codes noise as noise, not as its waveform."""
    seconds = 3 * MIN_PART_SECONDS + 5
    t = np.arange(int(seconds * RATE)) / RATE
    left = 0.2 * np.sin(2 * np.pi * 220 * t) + 0.1 * np.sin(2 * np.pi * 330 * t)
    right = 0.2 * np.sin(2 * np.pi * 550 * t) * (np.sin(2 * np.pi * 0.7 * t) > 0)
    right[:: RATE // 3] += 0.8
    sweep = 0.1 * np.sin(2 * np.pi * (100 + 40 * t) * t)
    path = tmp_path_factory.mktemp("aac") / "track.wav"
    soundfile.write(path, np.stack([left + sweep, right + sweep], axis=1).astype(np.float32), RATE, subtype="FLOAT")
    return path


def _decoded(encoded: EncodedAudio, tmp: Path, frames: int) -> np.ndarray:
    """The stream as a player hears it (put in an M4A the way `mux` does, then decoded), cut to `frames`."""
    m4a, wav = tmp / f"{encoded.path.stem}.m4a", tmp / f"{encoded.path.stem}.wav"
    run_ffmpeg([*mux_input_args(encoded), "-c", "copy", str(m4a)], what="mux")
    run_ffmpeg(["-i", str(m4a), "-c:a", "pcm_f32le", str(wav)], what="decode")
    decoded = soundfile.read(wav, dtype="float64")[0]
    # As from one ffmpeg encode straight into MP4: the last frame is played whole (ffmpeg 5.1 writes no end trim).
    assert len(decoded) == -(-frames // FRAME) * FRAME
    return decoded[:frames]


def _frame_errors(source: np.ndarray, decoded: np.ndarray) -> np.ndarray:
    n = len(source) // FRAME * FRAME
    return ((source[:n] - decoded[:n]) ** 2).reshape(-1, FRAME * source.shape[1]).sum(axis=1)


def test_parts_encoded_side_by_side_play_like_one_encode(track: Path, tmp_path: Path):
    source = soundfile.read(track, dtype="float64")[0]
    whole = _decoded(encode_aac(track, tmp_path / "whole.aac", parts=1), tmp_path, len(source))
    joined = _decoded(encode_aac(track, tmp_path / "joined.aac", parts=3), tmp_path, len(source))

    def snr(decoded: np.ndarray) -> float:
        return float(10 * np.log10((source**2).sum() / ((source - decoded) ** 2).sum()))

    assert snr(whole) > 35  # in place: a frame's shift would leave next to nothing of the source
    assert snr(joined) == pytest.approx(snr(whole), abs=0.3)
    # No frame near a join is worse than the worst of the one-piece encode (a join coded from cold state, or one
    # frame off, is hundreds of times worse there).
    assert _frame_errors(source, joined).max() <= 1.5 * _frame_errors(source, whole).max()
    assert not list(tmp_path.glob("*.part*.aac"))  # the parts are removed


def test_a_short_track_is_one_encode_in_place(tmp_path: Path):
    t = np.arange(RATE * 2) / RATE
    tone = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    soundfile.write(tmp_path / "short.wav", tone, RATE, subtype="FLOAT")
    encoded = encode_aac(tmp_path / "short.wav", tmp_path / "short.aac", parts=8)
    assert encoded.sample_rate == RATE
    decoded = _decoded(encoded, tmp_path, len(tone))
    assert np.abs(decoded[RATE // 2 : RATE] - tone[RATE // 2 : RATE]).max() < 0.01


def test_adts_frames_are_split_by_their_headers_and_garbage_is_refused(track: Path, tmp_path: Path):
    data = encode_aac(track, tmp_path / "t.aac").path.read_bytes()
    frames = adts_frames(data)
    assert b"".join(frames) == data
    assert len(frames) == pytest.approx(soundfile.info(str(track)).frames / FRAME, abs=3)
    with pytest.raises(MediaProcessingError):
        adts_frames(b"RIFF" + data)
    with pytest.raises(MediaProcessingError):
        adts_frames(data[:-5])

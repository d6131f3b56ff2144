from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from octavia.audio import AudioClip
from octavia.errors import InputNotFoundError, NoAudioStreamError, NotMediaError
from pipeline.media.extract import extract_audio
from tests.factories import ffmpeg
from tests.pipeline.conftest import SECONDS, Media


@pytest.mark.parametrize("name", ["mp4", "mkv", "mov", "webm_vp9", "m4a"])
def test_extract_gives_rate_and_duration(media: Media, name: str):
    clip = extract_audio(getattr(media, name))
    assert clip.sample_rate == 16_000 and clip.channels == 1
    assert clip.duration == pytest.approx(SECONDS, abs=0.03)
    assert np.abs(clip.samples).max() > 0.05  # the speech is there, not silence


def test_extract_keeps_speech_in_place(media: Media):
    """The extracted audio lines up with the source WAV (no offset from codec priming)."""
    reference = AudioClip.read(str(media.speech_wav), sample_rate=16_000)
    clip = extract_audio(media.mp4)
    n = min(reference.num_frames, clip.num_frames)
    lag = np.argmax(np.correlate(clip.samples[:n], reference.samples[:n][4000:12000], mode="valid")) - 4000
    assert abs(lag) <= 16  # within 1 ms


def test_extract_stereo_48k_to_file(media: Media, tmp_path: Path):
    out = tmp_path / "x.wav"
    clip = extract_audio(media.stereo_48k, out, sample_rate=48_000, channels=2)
    assert clip.channels == 2 and clip.sample_rate == 48_000
    assert clip.duration == pytest.approx(2.0, abs=0.001)
    assert out.exists()
    assert AudioClip.read(str(out), mono=False).samples.shape == (2, 96_000)
    # left is 330 Hz, right 440 Hz: the channels were not swapped or mixed
    freqs = [np.argmax(np.abs(np.fft.rfft(ch))) * 48_000 / ch.size for ch in clip.samples]
    assert freqs == pytest.approx([330, 440], abs=1)


def test_extract_resamples_mono_44k(media: Media):
    clip = extract_audio(media.mono_44k, sample_rate=22_050)
    assert clip.sample_rate == 22_050 and clip.num_frames == pytest.approx(44_100, abs=2)


def test_extract_bad_inputs(media: Media, tmp_path: Path):
    with pytest.raises(InputNotFoundError):
        extract_audio(tmp_path / "missing.mp4")
    (tmp_path / "fake.mkv").write_bytes(b"\x00\x01garbage" * 100)
    with pytest.raises(NotMediaError):
        extract_audio(tmp_path / "fake.mkv")
    with pytest.raises(NoAudioStreamError):
        extract_audio(media.silent_video)
    with pytest.raises(ValueError, match="not audio"):
        extract_audio(media.mp4, stream_index=0)


@pytest.mark.parametrize("container", ["mp4", "ts"])  # MPEG-TS: the file's clock also starts late (1.4 s)
def test_audio_that_starts_after_the_picture_is_decoded_on_the_picture_timeline(
    media: Media, tmp_path: Path, container: str
):
    """A file whose audio track starts 2 s into the video: both extraction paths put the speech 2 s later than in
    the source WAV, where the picture has it, instead of packing the samples from 0 (the dub would lead by 2 s)."""
    from pipeline.artifacts import ArtifactStore
    from pipeline.dub import extract_mix
    from pipeline.media.probe import probe_media

    late = tmp_path / f"late.{container}"
    ffmpeg("-f", "lavfi", "-i", f"testsrc2=size=160x120:rate=25:duration={SECONDS + 3}", "-itsoffset", "2.0",
           "-i", str(media.speech_wav), "-map", "0:v", "-map", "1:a", "-c:v", "libx264", "-preset", "ultrafast",
           "-c:a", "aac", str(late))  # fmt: skip
    reference = AudioClip.read(str(media.speech_wav), sample_rate=16_000).samples
    onset = int(np.flatnonzero(np.abs(reference) > 0.05)[0])
    info = probe_media(late)
    mix_wav = extract_mix(ArtifactStore(tmp_path / "store"), info, info.audio[0], "late-sha")
    for clip in (extract_audio(late), AudioClip.read(str(mix_wav), sample_rate=16_000)):
        first = int(np.flatnonzero(np.abs(clip.samples) > 0.05)[0])
        assert (first - onset) / 16_000 == pytest.approx(2.0, abs=0.03)
        assert clip.duration == pytest.approx(SECONDS + 2.0, abs=0.05)

from __future__ import annotations

from pathlib import Path

import pytest

from octavia.errors import EmptyMediaError, InputNotFoundError, NoAudioStreamError, NotMediaError
from pipeline.media.probe import MediaInfo, probe_media
from tests.pipeline.conftest import SECONDS, Media


@pytest.mark.parametrize(
    ("name", "video_codec", "audio_codec", "format_part"),
    [
        ("mp4", "h264", "aac", "mp4"),
        ("mkv", "h264", "opus", "matroska"),
        ("mov", "h264", "aac", "mov"),
        ("webm_vp9", "vp9", "opus", "webm"),
        ("webm_vp8", "vp8", "vorbis", "webm"),
    ],
)
def test_probe_reads_video_containers(media: Media, name: str, video_codec: str, audio_codec: str, format_part: str):
    info = probe_media(getattr(media, name))
    assert format_part in info.format_name
    assert info.has_video and info.video is not None
    assert info.video.codec == video_codec
    assert info.video.fps == pytest.approx(25.0)
    assert info.video.rotation == 0
    assert [a.codec for a in info.audio] == [audio_codec]
    assert info.duration == pytest.approx(SECONDS, abs=0.05)
    assert info.audio[0].duration == pytest.approx(SECONDS, abs=0.05)  # mkv/webm: from the DURATION tag
    assert info.size_bytes == getattr(media, name).stat().st_size


def test_probe_sizes_and_language(media: Media):
    mp4 = probe_media(media.mp4)
    assert (mp4.video.width, mp4.video.height) == (320, 240)
    assert mp4.audio[0].sample_rate == 22_050 and mp4.audio[0].channels == 1
    assert mp4.audio[0].language is None  # "und" means unknown
    assert probe_media(media.mkv).audio[0].language == "eng"


def test_probe_portrait_rotation(media: Media):
    video = probe_media(media.portrait).video
    assert video is not None
    assert (video.width, video.height) == (320, 240)  # coded size
    assert video.rotation in (90, 270)
    assert video.display_size == (240, 320)


@pytest.mark.parametrize(
    ("name", "rate", "channels"), [("m4a", 22_050, 1), ("stereo_48k", 48_000, 2), ("mono_44k", 44_100, 1)]
)
def test_probe_audio_only(media: Media, name: str, rate: int, channels: int):
    info = probe_media(getattr(media, name))
    assert not info.has_video and info.video is None
    assert info.require_audio().sample_rate == rate
    assert info.require_audio().channels == channels


def test_cover_art_is_not_video(media: Media):
    info = probe_media(media.mp3_with_cover)
    assert info.video is None
    assert info.require_audio().codec == "mp3"


def test_summary_and_json_round_trip(media: Media):
    info = probe_media(media.portrait)
    text = info.summary()
    assert "h264 240x320" in text and "rotated" in text and "aac 22050 Hz" in text
    assert MediaInfo.model_validate_json(info.model_dump_json()) == info


def test_missing_file(tmp_path: Path):
    with pytest.raises(InputNotFoundError, match="no such file"):
        probe_media(tmp_path / "nope.mp4")


def test_text_file_renamed_mp4(tmp_path: Path):
    fake = tmp_path / "notes.mp4"
    fake.write_text("this is not a video\n" * 20)
    with pytest.raises(NotMediaError, match="not a readable audio or video file"):
        probe_media(fake)


def test_text_file_is_not_media(tmp_path: Path):
    fake = tmp_path / "readme.txt"
    fake.write_text("plain text " * 200)
    with pytest.raises(NotMediaError):
        probe_media(fake)


def test_still_image_is_not_media(tmp_path: Path):
    from tests.factories import ffmpeg

    png = tmp_path / "still.png"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=64x48", "-frames:v", "1", str(png))
    with pytest.raises(NotMediaError, match="png"):
        probe_media(png)


def test_zero_bytes(tmp_path: Path):
    empty = tmp_path / "empty.mp4"
    empty.touch()
    with pytest.raises(EmptyMediaError, match="0 bytes"):
        probe_media(empty)


def test_video_without_audio(media: Media):
    info = probe_media(media.silent_video)
    assert info.has_video and not info.has_audio
    with pytest.raises(NoAudioStreamError, match="no audio stream"):
        info.require_audio()


def test_errors_are_typed_with_codes(tmp_path: Path):
    with pytest.raises(InputNotFoundError) as err:
        probe_media(tmp_path / "x.mkv")
    assert err.value.code == "input_not_found" and err.value.details["path"].endswith("x.mkv")


def test_zero_duration(tmp_path: Path):
    import numpy as np

    from octavia.audio import AudioClip

    header_only = tmp_path / "nothing.wav"
    AudioClip(np.zeros(0, np.float32), 16_000).write(str(header_only))
    assert header_only.stat().st_size > 0
    with pytest.raises(EmptyMediaError, match="no playable content"):
        probe_media(header_only)

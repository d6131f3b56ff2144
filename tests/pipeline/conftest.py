"""Small generated media shared by the pipeline tests (built once per session, 2-3 s, 320x240 or smaller)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from octavia.audio import AudioClip
from tests.factories import espeak, ffmpeg, make_video, tone

SECONDS = 3.0


@dataclass(frozen=True)
class Media:
    speech_wav: Path  # espeak, 22.05 kHz mono
    mp4: Path  # h264 + aac (speech)
    mkv: Path  # h264 + opus
    mov: Path  # h264 + aac
    webm_vp9: Path  # vp9 + opus
    webm_vp8: Path  # vp8 + vorbis (cannot go into mp4 as is)
    portrait: Path  # mp4 with 90 degree display rotation
    silent_video: Path  # h264, no audio stream
    m4a: Path  # aac only
    stereo_48k: Path  # wav
    mono_44k: Path  # wav
    mp3_with_cover: Path  # mp3 + attached picture


def _wav(path: Path, clip: AudioClip) -> Path:
    clip.write(str(path))
    return path


@pytest.fixture(scope="session")
def media(tmp_path_factory: pytest.TempPathFactory) -> Media:
    d = tmp_path_factory.mktemp("media")
    speech = espeak("Hello there. This is a short test of the dubbing pipeline.", d / "speech.wav")
    # Pad/trim the speech to exactly SECONDS so every container has the same nominal duration.
    n = int(SECONDS * speech.sample_rate)
    padded = AudioClip(np.pad(speech.samples, (0, max(0, n - speech.num_frames)))[:n], speech.sample_rate)
    speech_wav = _wav(d / "speech_padded.wav", padded)

    mp4 = make_video(d / "clip.mp4", speech_wav, seconds=SECONDS)
    mkv = d / "clip.mkv"
    ffmpeg(
        "-i",
        str(mp4),
        "-map",
        "0",
        "-c:v",
        "copy",
        "-c:a",
        "libopus",
        "-b:a",
        "48k",
        "-metadata:s:a:0",
        "language=eng",
        str(mkv),
    )
    mov = d / "clip.mov"
    ffmpeg("-i", str(mp4), "-map", "0", "-c", "copy", str(mov))
    small = f"testsrc2=size=160x120:rate=25:duration={SECONDS}"
    webm_vp9 = d / "clip_vp9.webm"
    ffmpeg(
        "-f",
        "lavfi",
        "-i",
        small,
        "-i",
        str(speech_wav),
        "-c:v",
        "libvpx-vp9",
        "-deadline",
        "realtime",
        "-cpu-used",
        "8",
        "-b:v",
        "200k",
        "-c:a",
        "libopus",
        "-b:a",
        "48k",
        "-shortest",
        str(webm_vp9),
    )
    webm_vp8 = d / "clip_vp8.webm"
    ffmpeg(
        "-f",
        "lavfi",
        "-i",
        small,
        "-i",
        str(speech_wav),
        "-c:v",
        "libvpx",
        "-deadline",
        "realtime",
        "-cpu-used",
        "8",
        "-b:v",
        "200k",
        "-c:a",
        "libvorbis",
        "-shortest",
        str(webm_vp8),
    )
    portrait = d / "portrait.mp4"
    ffmpeg("-i", str(mp4), "-map", "0", "-c", "copy", "-metadata:s:v:0", "rotate=90", str(portrait))
    silent_video = make_video(d / "silent.mp4", None, seconds=2.0)
    m4a = d / "clip.m4a"
    ffmpeg("-i", str(speech_wav), "-c:a", "aac", "-b:a", "96k", str(m4a))
    stereo = AudioClip(np.stack([tone(2.0, 330, 48_000).samples, tone(2.0, 440, 48_000).samples]), 48_000)
    stereo_48k = _wav(d / "stereo_48k.wav", stereo)
    mono_44k = _wav(d / "mono_44k.wav", tone(2.0, 220, 44_100))
    cover = d / "cover.png"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=64x64", "-frames:v", "1", str(cover))
    mp3_with_cover = d / "song.mp3"
    ffmpeg(
        "-i",
        str(mono_44k),
        "-i",
        str(cover),
        "-map",
        "0",
        "-map",
        "1",
        "-c:a",
        "libmp3lame",
        "-c:v",
        "png",
        "-disposition:v",
        "attached_pic",
        str(mp3_with_cover),
    )
    return Media(
        speech_wav=speech_wav,
        mp4=mp4,
        mkv=mkv,
        mov=mov,
        webm_vp9=webm_vp9,
        webm_vp8=webm_vp8,
        portrait=portrait,
        silent_video=silent_video,
        m4a=m4a,
        stereo_48k=stereo_48k,
        mono_44k=mono_44k,
        mp3_with_cover=mp3_with_cover,
    )

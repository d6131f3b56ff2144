"""Decode an audio stream of a media file into an `AudioClip` (and optionally a WAV file) with ffmpeg."""

from __future__ import annotations

import tempfile
from pathlib import Path

from octavia.audio import AudioClip
from octavia.errors import EmptyMediaError
from pipeline.media.ffmpeg import run_ffmpeg
from pipeline.media.probe import AudioStreamInfo, MediaInfo, probe_media


def on_timeline(info: MediaInfo, stream: AudioStreamInfo) -> list[str]:
    """ffmpeg arguments that decode `stream` onto the file's timeline, the one a mux of its picture keeps: silence
    for as long as the track starts after the file does, and in any gap in its timestamps. ffmpeg otherwise
    packs the samples from 0 on, and a dub of a track that starts 2 s after the picture would run 2 s ahead."""
    filters = ["aresample=async=1"]  # fills gaps (and trims overlaps) after the first sample
    lead = stream.start_time - info.start_time
    if lead > 0.0005:
        filters.append(f"adelay=delays={lead * 1000:.3f}:all=1")  # milliseconds (no unit suffix in ffmpeg 5)
    return ["-af", ",".join(filters)]


def extract_audio(
    path: str | Path,
    out_wav: str | Path | None = None,
    sample_rate: int = 16_000,
    channels: int = 1,
    stream_index: int | None = None,
) -> AudioClip:
    """Decode one audio stream, resampled to `sample_rate` and down/up-mixed to `channels`.

    `stream_index` is the absolute ffprobe index; by default the stream `MediaInfo.require_audio()` picks. The clip
    is also written to `out_wav` (16-bit PCM) when given. Bad input raises the typed errors of `probe_media` and
    `NoAudioStreamError`; an ffmpeg failure raises `MediaProcessingError`.
    """
    if sample_rate <= 0 or channels not in (1, 2):
        raise ValueError(f"need sample_rate > 0 and 1 or 2 channels, got {sample_rate} Hz, {channels} ch")
    info = probe_media(path)
    stream = info.require_audio()
    if stream_index is not None:
        stream = next((a for a in info.audio if a.index == stream_index), None)  # type: ignore[assignment]
        if stream is None:
            available = ", ".join(str(a.index) for a in info.audio)
            raise ValueError(f"stream #{stream_index} of {info.path.name} is not audio; audio streams: {available}")

    with tempfile.TemporaryDirectory(prefix="octavia-extract-") as tmp:
        # A WAV on disk rather than a pipe: soundfile then allocates the samples once, which matters for long inputs.
        target = Path(out_wav) if out_wav is not None else Path(tmp) / "audio.wav"
        codec = "pcm_s16le" if out_wav is not None else "pcm_f32le"
        select = ["-i", str(info.path), "-map", f"0:{stream.index}", "-vn", "-sn", "-dn"]
        convert = [*on_timeline(info, stream), "-ac", str(channels), "-ar", str(sample_rate), "-c:a", codec,
                   "-f", "wav", str(target)]  # fmt: skip
        run_ffmpeg(
            [*select, *convert],
            what=f"extract audio stream #{stream.index} of {info.path.name}",
        )
        clip = AudioClip.read(str(target), mono=channels == 1)
    if clip.num_frames == 0:
        raise EmptyMediaError(
            f"the audio stream of {info.path.name} decodes to no samples", details={"path": str(path)}
        )
    return clip

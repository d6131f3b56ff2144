"""What is in a media file: ffprobe's JSON turned into typed records, with typed errors for bad input."""

from __future__ import annotations

import json
import math
import shutil
import subprocess
from fractions import Fraction
from pathlib import Path
from typing import Any

from octavia.errors import (
    EmptyMediaError,
    InputNotFoundError,
    MissingDependencyError,
    NoAudioStreamError,
    NotMediaError,
)
from octavia.records import Record

# Demuxers that "succeed" on files that are not audio/video: ANSI art / text, still images, subtitle files.
_NOT_MEDIA_FORMATS = {"tty", "image2", "srt", "webvtt", "ass", "subviewer", "microdvd", "lrc", "mpl2", "jacosub"}
# Below this a file has no usable audio (one 20 ms frame is the smallest thing an ASR model can use).
_MIN_DURATION = 0.02


class VideoStreamInfo(Record):
    index: int
    codec: str
    width: int
    height: int
    fps: float | None
    # Degrees the player turns the picture counter-clockwise (display matrix), normalised to 0/90/180/270.
    rotation: int = 0
    duration: float | None = None

    @property
    def display_size(self) -> tuple[int, int]:
        """(width, height) as shown to the viewer, after rotation: a phone portrait video is taller than wide."""
        return (self.height, self.width) if self.rotation in (90, 270) else (self.width, self.height)


class AudioStreamInfo(Record):
    index: int
    codec: str
    sample_rate: int
    channels: int
    language: str | None = None  # the stream's tag as written in the file (usually ISO 639-2, e.g. "eng")
    duration: float | None = None
    default: bool = False
    start_time: float = 0.0  # of its first sample, on the file's clock


class MediaInfo(Record):
    path: Path
    format_name: str
    duration: float
    size_bytes: int
    start_time: float = 0.0  # the file's clock at its earliest stream; what ffmpeg shifts to 0 when it writes
    video: VideoStreamInfo | None
    audio: tuple[AudioStreamInfo, ...]

    @property
    def has_video(self) -> bool:
        return self.video is not None

    @property
    def has_audio(self) -> bool:
        return bool(self.audio)

    def require_audio(self) -> AudioStreamInfo:
        """The audio stream to dub: the one flagged default, else the first. Raises NoAudioStreamError."""
        if not self.audio:
            raise NoAudioStreamError(
                f"{self.path.name} has no audio stream, so there is no speech to dub",
                details={"path": str(self.path), "video": self.video is not None},
            )
        return next((a for a in self.audio if a.default), self.audio[0])

    def summary(self) -> str:
        lines = [f"{self.path.name}: {self.format_name}, {self.duration:.3f} s, {self.size_bytes:,} bytes"]
        if self.video is not None:
            v = self.video
            w, h = v.display_size
            fps = f"{v.fps:.3f} fps" if v.fps else "unknown fps"
            rot = f", rotated {v.rotation}°" if v.rotation else ""
            lines.append(f"  video #{v.index}: {v.codec} {w}x{h} {fps}{rot}")
        for a in self.audio:
            lang = a.language or "und"
            lines.append(f"  audio #{a.index}: {a.codec} {a.sample_rate} Hz, {a.channels} ch, language {lang}")
        if not self.audio:
            lines.append("  no audio stream")
        return "\n".join(lines)


def probe_media(path: str | Path) -> MediaInfo:
    """Read `path` with ffprobe. Raises InputNotFoundError, EmptyMediaError or NotMediaError for bad input."""
    path = Path(path).absolute()  # `MediaInfo.path` goes to ffmpeg, which reads a relative `a:b.mp4` as a URL
    if not path.exists():
        raise InputNotFoundError(f"no such file: {path}", details={"path": str(path)})
    if not path.is_file():
        raise NotMediaError(f"{path} is not a file", details={"path": str(path)})
    size = path.stat().st_size
    if size == 0:
        raise EmptyMediaError(f"{path.name} is empty (0 bytes)", details={"path": str(path)})

    data = _ffprobe(path)
    fmt = data.get("format") or {}
    format_name = str(fmt.get("format_name", ""))
    streams = data.get("streams") or []
    if format_name in _NOT_MEDIA_FORMATS or format_name.endswith("_pipe"):
        raise NotMediaError(
            f"{path.name} is not an audio or video file (ffprobe reads it as {format_name!r})",
            details={"path": str(path), "format": format_name},
        )

    video = next((_video(s) for s in streams if _is_video(s)), None)
    audio = tuple(_audio(s) for s in streams if s.get("codec_type") == "audio")
    if video is None and not audio:
        raise NotMediaError(
            f"{path.name} has neither a video nor an audio stream", details={"path": str(path), "format": format_name}
        )

    durations = [d for d in [video.duration if video else None, *(a.duration for a in audio)] if d]
    duration = _float(fmt.get("duration")) or max(durations, default=0.0)
    if duration < _MIN_DURATION:
        raise EmptyMediaError(
            f"{path.name} has no playable content (duration {duration:.3f} s)",
            details={"path": str(path), "duration": duration},
        )
    start = _clock(fmt.get("start_time"))
    return MediaInfo(path=path, format_name=format_name, duration=duration, size_bytes=size, start_time=start,
                     video=video, audio=audio)  # fmt: skip


def _ffprobe(path: Path) -> dict[str, Any]:
    if shutil.which("ffprobe") is None:
        raise MissingDependencyError("ffprobe is not installed; install ffmpeg (apt-get install ffmpeg)")
    cmd = ["ffprobe", "-v", "error", "-print_format", "json", "-show_format", "-show_streams", str(path)]
    proc = subprocess.run(cmd, capture_output=True, text=True, errors="replace")
    if proc.returncode != 0:
        reason = proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else f"ffprobe exit {proc.returncode}"
        reason = reason.removeprefix(f"{path}: ")
        raise NotMediaError(
            f"{path.name} is not a readable audio or video file ({reason})",
            details={"path": str(path), "ffprobe": proc.stderr[-2000:]},
        )
    try:
        return dict(json.loads(proc.stdout or "{}"))
    except json.JSONDecodeError as exc:
        raise NotMediaError(f"ffprobe gave unreadable output for {path.name}", details={"path": str(path)}) from exc


def _is_video(stream: dict[str, Any]) -> bool:
    # Cover art in music files is a one-picture "video" stream flagged attached_pic: not something to dub.
    disposition = stream.get("disposition") or {}
    return stream.get("codec_type") == "video" and not disposition.get("attached_pic")


def _video(s: dict[str, Any]) -> VideoStreamInfo:
    return VideoStreamInfo(
        index=int(s["index"]),
        codec=str(s.get("codec_name", "unknown")),
        width=int(s.get("width") or 0),
        height=int(s.get("height") or 0),
        fps=_rate(s.get("avg_frame_rate")) or _rate(s.get("r_frame_rate")),
        rotation=_rotation(s),
        duration=_stream_duration(s),
    )


def _audio(s: dict[str, Any]) -> AudioStreamInfo:
    tags = {k.lower(): v for k, v in (s.get("tags") or {}).items()}
    language = tags.get("language")
    return AudioStreamInfo(
        index=int(s["index"]),
        codec=str(s.get("codec_name", "unknown")),
        sample_rate=int(s.get("sample_rate") or 0),
        channels=int(s.get("channels") or 0),
        language=None if language in (None, "", "und") else str(language),
        duration=_stream_duration(s),
        default=bool((s.get("disposition") or {}).get("default")),
        start_time=_clock(s.get("start_time")),
    )


def _rotation(s: dict[str, Any]) -> int:
    for side in s.get("side_data_list") or []:
        if "rotation" in side:
            return _right_angle(float(side["rotation"]))
    rotate = (s.get("tags") or {}).get("rotate")  # ffprobe < 5 reported a clockwise tag instead
    return _right_angle(-float(rotate)) if rotate is not None else 0


def _right_angle(degrees: float) -> int:
    return round(degrees / 90.0) % 4 * 90


def _stream_duration(s: dict[str, Any]) -> float | None:
    direct = _float(s.get("duration"))
    if direct:
        return direct
    # Matroska/WebM keep per-stream durations only as a "DURATION" tag: HH:MM:SS.nnnnnnnnn
    tag = {k.lower(): v for k, v in (s.get("tags") or {}).items()}.get("duration")
    if not tag:
        return None
    try:
        h, m, sec = str(tag).split(":")
        return int(h) * 3600 + int(m) * 60 + float(sec)
    except ValueError:
        return None


def _float(value: Any) -> float | None:
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out if out == out and out >= 0 else None  # drops NaN


def _clock(value: Any) -> float:
    """A start time: may be negative (encoder delay), 0 when absent."""
    try:
        out = float(value)
    except (TypeError, ValueError):
        return 0.0
    return out if math.isfinite(out) else 0.0


def _rate(value: Any) -> float | None:
    try:
        rate = Fraction(str(value))
    except (ValueError, ZeroDivisionError):
        return None
    return float(rate) if rate > 0 else None

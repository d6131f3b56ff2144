"""Is a finished upload usable media? `ffprobe` decides (the control plane never imports the pipeline).

ffprobe may only read the file itself (`-protocol_whitelist file`) with a container demuxer from a fixed list: a
text file that happens to be an HLS playlist or an ffconcat list would otherwise make ffprobe (and later the
pipeline's ffmpeg) open other local files or URLs named inside it.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from control_plane.errors import InvalidRequestError, ServiceUnavailableError

# Demuxer names (`ffprobe -demuxers`); matching any name of a demuxer admits it ("mov" admits mp4/m4a/mov).
ALLOWED_DEMUXERS = (
    "mov,matroska,webm,avi,wav,w64,mp3,flac,ogg,aac,asf,mpegts,mpeg,flv,aiff,caf,amr,ac3,eac3,mxf,dv,nut,3gp"
)
_STREAM_FIELDS = ("index", "codec_type", "codec_name", "duration", "sample_rate", "channels", "width", "height")


class UploadRejectedError(InvalidRequestError):
    """The upload arrived whole but cannot be dubbed; the row is marked rejected (so the change is committed)."""

    persist_changes = True
    code = "upload_rejected"


class NotMediaError(UploadRejectedError):
    code = "not_media"


class NoAudioStreamError(UploadRejectedError):
    code = "no_audio_stream"


class EmptyMediaError(UploadRejectedError):
    code = "empty_media"


class ProbeUnavailableError(ServiceUnavailableError):
    code = "probe_unavailable"


@dataclass(frozen=True)
class MediaProbe:
    duration: float
    info: dict[str, Any]


def _float(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if number == number and number not in (float("inf"), float("-inf")) else None


def _summary(raw: dict[str, Any], duration: float) -> dict[str, Any]:
    fmt = raw.get("format") or {}
    streams = [
        {field: stream[field] for field in _STREAM_FIELDS if stream.get(field) is not None}
        for stream in raw.get("streams") or []
        if isinstance(stream, dict)
    ]
    return {
        "format_name": fmt.get("format_name"),
        "duration": duration,
        "size": int(fmt["size"]) if str(fmt.get("size", "")).isdigit() else None,
        "bit_rate": int(fmt["bit_rate"]) if str(fmt.get("bit_rate", "")).isdigit() else None,
        "streams": streams,
    }


def probe_media(path: Path, *, timeout_seconds: float) -> MediaProbe:
    """The duration and a stream summary of `path`; raises an `UploadRejectedError` subclass for unusable files."""
    command = [
        "ffprobe",
        "-v",
        "error",
        "-protocol_whitelist",
        "file",
        "-format_whitelist",
        ALLOWED_DEMUXERS,
        "-print_format",
        "json",
        "-show_format",
        "-show_streams",
        f"file:{path}",
    ]
    try:
        result = subprocess.run(command, capture_output=True, timeout=timeout_seconds, check=False)
    except FileNotFoundError as exc:
        raise ProbeUnavailableError("ffprobe is not installed on the server; the upload cannot be checked") from exc
    except subprocess.TimeoutExpired as exc:
        raise NotMediaError(f"the file could not be read as media within {timeout_seconds:g} s") from exc
    try:
        raw = json.loads(result.stdout or b"{}")
    except ValueError:
        raw = {}
    if result.returncode != 0 or not isinstance(raw, dict) or not raw.get("format"):
        reason = result.stderr.decode(errors="replace").strip().splitlines()[-1:] or ["unknown format"]
        raise NotMediaError(
            "the file is not an audio or video file ffprobe can read", details={"reason": reason[0][-200:]}
        )
    streams = [s for s in raw.get("streams") or [] if isinstance(s, dict)]
    audio = [s for s in streams if s.get("codec_type") == "audio"]
    if not audio:
        kinds = sorted({str(s.get("codec_type")) for s in streams})
        raise NoAudioStreamError("the file has no audio stream to dub", details={"stream_types": kinds})
    durations = [_float(raw["format"].get("duration")), *(_float(s.get("duration")) for s in audio)]
    duration = max((d for d in durations if d is not None), default=0.0)
    if duration <= 0:
        raise EmptyMediaError("the file's audio has no duration")
    return MediaProbe(duration=duration, info=_summary(raw, duration))

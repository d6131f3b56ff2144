"""HTTP codecs shared by the deployments' `__call__`: audio in (any format soundfile or ffmpeg reads), WAV or JSON
out, and every failure as `{"error": {"code", "message", "details"}}` with the error's status code."""

from __future__ import annotations

import io
import logging
import subprocess
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
from pydantic import BaseModel, ValidationError

from octavia.audio import AudioClip
from octavia.errors import BadInputError, EmptyMediaError, MediaProcessingError, NoAudioStreamError, NotMediaError
from serve_apps.common.errors import error_body, is_caller_error

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response

M = TypeVar("M", bound=BaseModel)
log = logging.getLogger("ray.serve")

MAX_BODY_BYTES = 512 * 1024 * 1024


class PayloadTooLargeError(BadInputError):
    code = "payload_too_large"
    status_code = 413


class MethodNotAllowedError(BadInputError):
    code = "method_not_allowed"
    status_code = 405


async def read_body(request: Request, *, limit: int = MAX_BODY_BYTES) -> bytes:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLargeError(f"the request body is {declared} bytes; the limit is {limit}")
    body = await request.body()
    if len(body) > limit:
        raise PayloadTooLargeError(f"the request body is {len(body)} bytes; the limit is {limit}")
    return body


def decode_audio(data: bytes, *, mono: bool = True) -> AudioClip:
    """Audio from the bytes of a file: soundfile (WAV, FLAC, OGG, MP3) first, then ffmpeg (anything else)."""
    import soundfile

    if not data:
        raise EmptyMediaError("the request body is empty: send the bytes of an audio file")
    try:
        samples, rate = soundfile.read(io.BytesIO(data), dtype="float32", always_2d=True)
    except (RuntimeError, TypeError):  # soundfile.LibsndfileError is a RuntimeError
        samples, rate = _ffmpeg_decode(data)
    if samples.shape[0] == 0:
        raise EmptyMediaError("the audio holds no samples")
    clip = AudioClip(np.ascontiguousarray(samples.T), int(rate))
    if clip.channels == 1:
        clip = AudioClip(clip.samples[0], clip.sample_rate)
    return clip.mono() if mono else clip


def _ffmpeg_decode(data: bytes) -> tuple[np.ndarray, int]:
    import soundfile

    # A file, not a pipe: containers such as MP4 keep their index at the end and need seeking.
    with tempfile.TemporaryDirectory(prefix="octavia-http-") as tmp:
        source = Path(tmp) / "input"
        source.write_bytes(data)
        try:
            done = subprocess.run(
                ["ffmpeg", "-nostdin", "-v", "error", "-i", str(source), "-vn", "-f", "wav", "-c:a", "pcm_f32le", "-"],
                capture_output=True,
                timeout=600,
            )
        except FileNotFoundError as exc:
            raise MediaProcessingError("ffmpeg is not installed: only WAV, FLAC, OGG and MP3 can be read") from exc
    stderr = done.stderr.decode(errors="replace").strip()
    if done.returncode != 0 or not done.stdout:
        if "does not contain any stream" in stderr or "matches no streams" in stderr:
            raise NoAudioStreamError("the file has no audio stream")
        raise NotMediaError(
            "the request body is not an audio or video file ffmpeg can read", details={"ffmpeg": stderr[-300:]}
        )
    samples, rate = soundfile.read(io.BytesIO(done.stdout), dtype="float32", always_2d=True)
    return samples, int(rate)


def encode_wav(clip: AudioClip) -> bytes:
    import soundfile

    buffer = io.BytesIO()
    data = clip.samples.T if clip.samples.ndim == 2 else clip.samples
    soundfile.write(buffer, data, clip.sample_rate, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


def wav_response(clip: AudioClip) -> Response:
    from starlette.responses import Response

    return Response(encode_wav(clip), media_type="audio/wav")


def json_response(content: Any, status_code: int = 200) -> Response:
    from starlette.responses import JSONResponse

    return JSONResponse(content, status_code=status_code)


def parse_body(data: bytes, model: type[M]) -> M:
    """A JSON body as `model`; malformed or invalid JSON is the caller's error (422 with pydantic's findings)."""
    try:
        return model.model_validate_json(data)
    except ValidationError as exc:
        problems = [
            {"loc": [str(p) for p in e["loc"]], "msg": e["msg"], "type": e["type"]}
            for e in exc.errors(include_url=False, include_context=False, include_input=False)
        ]
        raise BadInputError(f"the JSON body is not a valid {model.__name__}", details={"errors": problems}) from None


def query_float(request: Request, name: str, default: float) -> float:
    value = request.query_params.get(name)
    if value is None or value == "":
        return default
    try:
        return float(value)
    except ValueError:
        raise BadInputError(f"query parameter {name!r} must be a number, got {value!r}") from None


def query_bool(request: Request, name: str) -> bool:
    value = (request.query_params.get(name) or "false").lower()
    if value not in {"true", "false", "1", "0"}:
        raise BadInputError(f"query parameter {name!r} must be true or false, got {value!r}")
    return value in {"true", "1"}


def query_int(request: Request, name: str) -> int | None:
    value = request.query_params.get(name)
    if value is None or value == "":
        return None
    try:
        return int(value)
    except ValueError:
        raise BadInputError(f"query parameter {name!r} must be an integer, got {value!r}") from None


async def respond(handler: Callable[[], Awaitable[Response]]) -> Response:
    """Run an HTTP handler; any exception becomes the JSON error shape (4xx for the caller's mistakes)."""
    try:
        return await handler()
    except Exception as exc:
        if not is_caller_error(exc):
            log.exception("HTTP request failed")
        status, body = error_body(exc)
        return json_response(body, status)


def require_method(request: Request, *allowed: str) -> None:
    if request.method not in allowed:
        raise MethodNotAllowedError(
            f"{request.method} is not supported here; use {' or '.join(allowed)}", details={"allowed": list(allowed)}
        )

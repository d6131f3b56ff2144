"""The tus 1.0 protocol surface (https://tus.io/protocols/resumable-upload): constants, header parsing, and a route
class that puts `Tus-Resumable` on every response of the uploads router, errors included.

Extensions: creation, checksum (sha1), termination, expiration. Not offered: creation-defer-length,
creation-with-upload, concatenation.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass
from datetime import datetime
from email.utils import format_datetime
from typing import Any

from fastapi import Request, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from control_plane.errors import ApiError
from control_plane.routing import UnitOfWorkRoute

TUS_VERSION = "1.0.0"
TUS_EXTENSIONS = "creation,checksum,termination,expiration"
CHECKSUM_ALGORITHMS = ("sha1",)
OFFSET_CONTENT_TYPE = "application/offset+octet-stream"
_SHA1_BYTES = 20
_METADATA_KEY_RE = re.compile(r"^[!#-+\--~]+$")  # printable ASCII without space and comma
_MAX_METADATA_VALUE_BYTES = 4096


class TusHeaderError(ApiError):
    status_code = 400
    code = "invalid_tus_header"


class UnsupportedTusVersionError(ApiError):
    status_code = 412
    code = "unsupported_tus_version"

    def __init__(self, sent: str | None) -> None:
        super().__init__(
            f"this server speaks tus {TUS_VERSION}; send `Tus-Resumable: {TUS_VERSION}`",
            details={"tus_resumable": sent, "supported": [TUS_VERSION]},
            headers={"Tus-Version": TUS_VERSION},
        )


class UnsupportedChecksumAlgorithmError(TusHeaderError):
    code = "unsupported_checksum_algorithm"


class UnsupportedContentTypeError(ApiError):
    status_code = 415
    code = "unsupported_media_type"


@dataclass(frozen=True)
class Checksum:
    algorithm: str
    digest: bytes


async def require_tus_version(request: Request) -> None:
    """A dependency for the protocol requests (all but OPTIONS and the JSON reads): 412 for another version."""
    sent = request.headers.get("tus-resumable")
    if sent != TUS_VERSION:
        raise UnsupportedTusVersionError(sent)


def parse_non_negative_int(headers: Mapping[str, str], name: str) -> int:
    raw = headers.get(name)
    if raw is None:
        raise TusHeaderError(f"the {name} header is required", details={"header": name})
    # RFC 9110 integers: digits only (int() would also accept "+1", " 1", "1_000").
    if not raw.isascii() or not raw.isdigit() or len(raw) > 19:
        raise TusHeaderError(f"{name} must be a non-negative integer", details={"header": name, "value": raw[:40]})
    return int(raw)


def parse_metadata(raw: str | None) -> dict[str, str]:
    """`Upload-Metadata: key base64value,key2 base64value,key3` → {key: decoded text}; keys must be unique."""
    metadata: dict[str, str] = {}
    if raw is None or not raw.strip():
        return metadata
    for pair in raw.split(","):
        parts = pair.strip().split(" ")
        key = parts[0]
        if len(parts) > 2 or not _METADATA_KEY_RE.match(key) or key in metadata:
            raise TusHeaderError("malformed Upload-Metadata", details={"header": "Upload-Metadata", "key": key[:40]})
        value = ""
        if len(parts) == 2:
            try:
                decoded = base64.b64decode(parts[1], validate=True)
                if len(decoded) > _MAX_METADATA_VALUE_BYTES:
                    raise ValueError("value too long")
                value = decoded.decode("utf-8")
            except (binascii.Error, ValueError) as exc:
                raise TusHeaderError(
                    f"Upload-Metadata value of {key!r} is not base64-encoded UTF-8 text",
                    details={"header": "Upload-Metadata", "key": key},
                ) from exc
        metadata[key] = value
    return metadata


def encode_metadata(metadata: Mapping[str, str | None]) -> str:
    """The Upload-Metadata header value for the known keys (HEAD answers must repeat the metadata)."""
    return ",".join(
        f"{key} {base64.b64encode(value.encode()).decode()}" for key, value in metadata.items() if value is not None
    )


def parse_checksum(raw: str | None) -> Checksum | None:
    """`Upload-Checksum: sha1 <base64 digest>`; another algorithm is a 400 (tus checksum extension)."""
    if raw is None:
        return None
    algorithm, _, encoded = raw.strip().partition(" ")
    if algorithm not in CHECKSUM_ALGORITHMS:
        raise UnsupportedChecksumAlgorithmError(
            f"unsupported checksum algorithm {algorithm[:20]!r}; supported: {', '.join(CHECKSUM_ALGORITHMS)}",
            details={"header": "Upload-Checksum", "supported": list(CHECKSUM_ALGORITHMS)},
        )
    try:
        digest = base64.b64decode(encoded.strip(), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise TusHeaderError("Upload-Checksum digest is not base64", details={"header": "Upload-Checksum"}) from exc
    if len(digest) != _SHA1_BYTES:
        raise TusHeaderError("Upload-Checksum digest is not a SHA-1 digest", details={"header": "Upload-Checksum"})
    return Checksum(algorithm, digest)


def http_date(moment: datetime) -> str:
    """RFC 9110 date, as tus wants in Upload-Expires."""
    return format_datetime(moment, usegmt=True)


def clean_metadata_text(value: str | None) -> str | None:
    """Client text shown back in listings: no control characters, at most 255 characters."""
    if value is None:
        return None
    cleaned = "".join(ch for ch in value if ch.isprintable())[:255]
    return cleaned or None


class TusRoute(UnitOfWorkRoute):
    """Adds `Tus-Resumable` to every response, including errors raised by dependencies (authentication, ...)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def tus_handler(request: Request) -> Response:
            try:
                response = await handler(request)
            except (ApiError, StarletteHTTPException) as exc:
                exc.headers = {**(exc.headers or {}), "Tus-Resumable": TUS_VERSION}
                raise
            response.headers["Tus-Resumable"] = TUS_VERSION
            return response

        return tus_handler

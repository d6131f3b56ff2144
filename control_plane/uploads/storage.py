"""Upload files on disk: data_dir/uploads/<user id>/<upload id>; both parts are server-generated.

A chunk is appended under an exclusive `flock` on the file (one writer per upload, across the worker processes of
one host; a second writer gets 423 Locked, as tusd answers). The database offset is the truth: bytes past it (a
crash between writing and recording) are cut off before the next chunk is written.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

from starlette.requests import ClientDisconnect

from control_plane.errors import ApiError
from control_plane.uploads.tus import Checksum
from octavia.disk import is_disk_full
from octavia.errors import StorageFullError


class UploadLockedError(ApiError):
    status_code = 423
    code = "upload_locked"


class ChecksumMismatchError(ApiError):
    status_code = 460  # tus checksum extension: "Checksum Mismatch"
    code = "checksum_mismatch"


class ChunkTooLargeError(ApiError):
    status_code = 413
    code = "chunk_too_large"


class UploadDataLostError(ApiError):
    status_code = 410
    code = "upload_data_lost"


def upload_path(data_dir: Path, user_id: uuid.UUID, upload_id: str) -> Path:
    return data_dir / "uploads" / str(user_id) / upload_id


@dataclass(frozen=True)
class ReceivedChunk:
    written: int
    disconnected: bool


@contextlib.contextmanager
def locked_file(path: Path) -> Iterator[int]:
    """The upload's file (created if missing) opened for writing under an exclusive lock; 423 when held."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno in (errno.EAGAIN, errno.EACCES):
                raise UploadLockedError("another request is writing to this upload; retry shortly") from exc
            raise
        yield descriptor
    finally:
        os.close(descriptor)  # releases the lock


def try_lock(path: Path) -> int | None:
    """A locked descriptor of an existing file, or None when it is missing or another request holds it."""
    try:
        descriptor = os.open(path, os.O_RDWR)
    except FileNotFoundError:
        return None
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(descriptor)
        return None
    return descriptor


async def receive_chunk(
    descriptor: int,
    offset: int,
    chunks: AsyncIterator[bytes],
    *,
    max_bytes: int,
    checksum: Checksum | None,
) -> ReceivedChunk:
    """Appends the request body at `offset`, streaming. With a checksum the chunk is kept only if it matches (460
    otherwise); without one, the bytes received before a disconnect are kept, so the client resumes after them."""
    size = os.fstat(descriptor).st_size
    if size < offset:
        raise UploadDataLostError(
            "the stored file is shorter than the recorded offset; start a new upload",
            details={"offset": offset, "stored": size},
        )
    os.ftruncate(descriptor, offset)
    os.lseek(descriptor, offset, os.SEEK_SET)
    hasher = hashlib.new(checksum.algorithm) if checksum else None
    written = 0
    disconnected = False
    try:
        async for chunk in chunks:
            if not chunk:
                continue
            if written + len(chunk) > max_bytes:
                raise ChunkTooLargeError(
                    f"the chunk goes past the upload's length ({max_bytes} bytes remained)",
                    details={"remaining": max_bytes},
                )
            if hasher is not None:
                hasher.update(chunk)
            # Local disk writes of <= 64 KiB go to the page cache: not worth a thread hop per chunk.
            view = memoryview(chunk)
            while view:
                view = view[os.write(descriptor, view) :]
            written += len(chunk)
    except ClientDisconnect:
        disconnected = True
    except BaseException as exc:
        os.ftruncate(descriptor, offset)
        _raise_if_disk_full(exc, offset)
        raise
    if hasher is not None and checksum is not None and (disconnected or hasher.digest() != checksum.digest):
        os.ftruncate(descriptor, offset)
        if disconnected:
            return ReceivedChunk(written=0, disconnected=True)
        raise ChecksumMismatchError(
            "the chunk does not match its Upload-Checksum; it was discarded, send it again",
            details={"algorithm": checksum.algorithm, "offset": offset},
        )
    try:
        os.fsync(descriptor)  # with delayed allocation a full disk may only show here
    except OSError as exc:
        os.ftruncate(descriptor, offset)
        _raise_if_disk_full(exc, offset)
        raise
    return ReceivedChunk(written=written, disconnected=disconnected)


def _raise_if_disk_full(exc: BaseException, offset: int) -> None:
    if is_disk_full(exc):
        raise StorageFullError(  # 507 Insufficient Storage: the server's fault; the client may resume later
            "the server has no disk space left for this chunk; it was discarded, resume the upload later",
            details={"offset": offset},
        ) from exc


def close(descriptor: int) -> None:
    os.close(descriptor)


def remove(path: Path) -> None:
    """Deletes an upload's file (missing is fine) and its user folder when that becomes empty."""
    path.unlink(missing_ok=True)
    with contextlib.suppress(OSError):
        path.parent.rmdir()

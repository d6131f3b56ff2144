"""A full disk named as such. Whichever writer hits it first says so in its own way: Python and numpy raise
`OSError` 28, ffmpeg prints "No space left on device" in its stderr, libsndfile raises only "System error.", Ray
wraps the worker's error in its task error. A run turns any of them into one `StorageFullError` that says which
folders are short of space, instead of an internal error with a traceback."""

from __future__ import annotations

import errno
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from octavia.errors import StorageFullError

NO_SPACE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})
NO_SPACE_TEXTS = (os.strerror(errno.ENOSPC), os.strerror(errno.EDQUOT))
# Less than this free counts as full: the write that failed needed more, and f_bavail can be a little above 0.
FULL_BELOW_BYTES = 1 << 20


def free_bytes(folder: Path) -> int | None:
    """Free space for this user on the file system holding `folder` (or its nearest existing parent)."""
    for candidate in (folder, *folder.parents):
        if candidate.exists():
            return shutil.disk_usage(candidate).free
    return None


@contextmanager
def sound_file_errors_named(folder: Path) -> Iterator[None]:
    """Around a libsndfile write into `folder`: its "System error." becomes an ENOSPC `OSError` when the file
    system holding `folder` is full (libsndfile keeps the errno to itself); other errors pass unchanged."""
    try:
        yield
    except RuntimeError as exc:  # soundfile.LibsndfileError
        free = free_bytes(folder)
        if free is not None and free < FULL_BELOW_BYTES:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(folder)) from exc
        raise


def is_disk_full(exc: BaseException) -> bool:
    """Whether `exc`, or anything it was raised from (causes, contexts, Ray's `cause`), is a full disk."""
    seen: set[int] = set()
    pending: list[BaseException] = [exc]
    while pending:
        error = pending.pop()
        if id(error) in seen:
            continue
        seen.add(id(error))
        if isinstance(error, OSError) and error.errno in NO_SPACE_ERRNOS:
            return True
        details = getattr(error, "details", None)
        text = str(error) + (str(details.get("stderr", "")) if isinstance(details, dict) else "")
        if any(phrase in text for phrase in NO_SPACE_TEXTS):
            return True
        pending += [e for e in (error.__cause__, error.__context__, getattr(error, "cause", None)) if e is not None]
    return False


@contextmanager
def full_disk_reported(**folders: Path) -> Iterator[None]:
    """Inside, an error that is a full disk leaves as `StorageFullError` naming the free space of each of
    `folders` (name=path), e.g. the output folder and the artifact cache."""
    try:
        yield
    except StorageFullError:
        raise
    except Exception as exc:
        if not is_disk_full(exc):
            raise
        free = {name: free_bytes(path) for name, path in folders.items()}
        where = ", ".join(f"the {name.replace('_', ' ')} {path}: {_size(free[name])}" for name, path in folders.items())
        raise StorageFullError(
            f"no space left on device. Free now, with this run's partial files removed: {where}. Free some space "
            "(`octavia cache prune --max-size ...` shrinks the artifact cache) and run again: finished work in the "
            "artifact cache is not redone",
            details={"free_bytes": free, "error": str(exc)[-500:]},
        ) from exc


def _size(value: int | None) -> str:
    from pydantic import ByteSize

    return "an unknown amount" if value is None else ByteSize(value).human_readable(decimal=True)

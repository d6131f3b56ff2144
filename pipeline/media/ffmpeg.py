"""Running ffmpeg: one place that turns a failed command into a `MediaProcessingError` with its stderr."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Sequence
from functools import cache

from octavia.errors import MediaProcessingError, MissingDependencyError


def run_ffmpeg(args: Sequence[str], *, what: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    """Run ffmpeg quietly (stdout is returned, for pipes); `what` completes "ffmpeg failed to ..."."""
    if shutil.which("ffmpeg") is None:
        raise MissingDependencyError("ffmpeg is not installed; install it (apt-get install ffmpeg)")
    cmd = ["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", *args]
    if stdin is None:
        cmd.insert(1, "-nostdin")
    proc = subprocess.run(cmd, input=stdin, capture_output=True)
    if proc.returncode != 0:
        tail = proc.stderr.decode("utf-8", "replace").strip()[-1500:]
        last = tail.splitlines()[-1] if tail else f"exit code {proc.returncode}"
        raise MediaProcessingError(f"ffmpeg failed to {what}: {last}", details={"command": cmd, "stderr": tail})
    return proc


@cache
def has_filter(name: str) -> bool:
    """Whether this ffmpeg build has a filter (rubberband and subtitles are optional at build time)."""
    proc = subprocess.run(["ffmpeg", "-hide_banner", "-filters"], capture_output=True, text=True)
    return any(line.split()[1:2] == [name] for line in proc.stdout.splitlines())

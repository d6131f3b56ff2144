"""Running ffmpeg: one place that turns a failed command into a `MediaProcessingError` with its stderr."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Sequence
from functools import cache

from octavia.errors import MediaProcessingError, MissingDependencyError


def run_ffmpeg(args: Sequence[str], *, what: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    """Run ffmpeg quietly (stdout is returned, for pipes); `what` completes "ffmpeg failed to ..."."""
    cmd = _command(args, stdin=stdin is not None)
    proc = subprocess.run(cmd, input=stdin, capture_output=True)
    _check(cmd, proc.returncode, proc.stderr, what)
    return proc


class FfmpegJob:
    """ffmpeg running in the background (no pipes): `wait()` for it, `cancel()` to stop it."""

    def __init__(self, args: Sequence[str], *, what: str) -> None:
        self.what = what
        self._cmd = _command(args, stdin=False)
        self._proc = subprocess.Popen(self._cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self._stderr: bytes | None = None

    def wait(self) -> None:
        """Until it ends; `MediaProcessingError` when it failed (or was cancelled)."""
        self._collect()
        _check(self._cmd, self._proc.returncode, self._stderr or b"", self.what)

    def cancel(self) -> None:
        """Stop it if it still runs (a no-op once it has ended)."""
        if self._proc.poll() is None:
            self._proc.kill()
        self._collect()

    def _collect(self) -> None:
        if self._stderr is None:
            self._stderr = self._proc.communicate()[1]


def filtergraph_value(text: str) -> str:
    """`text` escaped for an option value inside a filtergraph (ffmpeg-filters, "Notes on filtergraph escaping"):
    once for the option parser (`\\ ' :`), then once for the graph parser (`\\ ' [ ] , ;`)."""
    option_level = "".join(f"\\{c}" if c in "\\':" else c for c in text)
    return "".join(f"\\{c}" if c in "\\'[],;" else c for c in option_level)


def _command(args: Sequence[str], *, stdin: bool) -> list[str]:
    if shutil.which("ffmpeg") is None:
        raise MissingDependencyError("ffmpeg is not installed; install it (apt-get install ffmpeg)")
    return ["ffmpeg", "-hide_banner", *([] if stdin else ["-nostdin"]), "-loglevel", "error", "-y", *args]


def _check(cmd: list[str], returncode: int, stderr: bytes, what: str) -> None:
    if returncode != 0:
        tail = stderr.decode("utf-8", "replace").strip()[-1500:]
        last = tail.splitlines()[-1] if tail else f"exit code {returncode}"
        raise MediaProcessingError(f"ffmpeg failed to {what}: {last}", details={"command": cmd, "stderr": tail})


@cache
def has_filter(name: str) -> bool:
    """Whether this ffmpeg build has a filter (rubberband and subtitles are optional at build time)."""
    proc = subprocess.run(["ffmpeg", "-hide_banner", "-filters"], capture_output=True, text=True)
    return any(line.split()[1:2] == [name] for line in proc.stdout.splitlines())

"""Process-level signal handling shared by the `octavia` CLI and the pipeline's job entrypoint."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator


def exit_on_sigterm() -> None:
    """SIGTERM (kill, Ray's job stop, a container shutting down) unwinds like Ctrl-C, so context managers run:
    the dub's embedded Ray cluster is stopped instead of leaving its model replicas running without a driver."""

    def stop(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, stop)


@contextlib.contextmanager
def sigterm_handler_kept() -> Iterator[None]:
    """Put back the Python SIGTERM handler set before the block: `ray.init` replaces a driver's with its own
    `sys.exit(15)`, so a dub killed after Ray started exited 15 instead of 128 + 15."""
    before = signal.getsignal(signal.SIGTERM)
    try:
        yield
    finally:
        if callable(before) and threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, before)

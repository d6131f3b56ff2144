"""Process-level signal handling shared by the `octavia` CLI and the pipeline's job entrypoint."""

from __future__ import annotations

import signal


def exit_on_sigterm() -> None:
    """SIGTERM (kill, Ray's job stop, a container shutting down) unwinds like Ctrl-C, so context managers run:
    the dub's embedded Ray cluster is stopped instead of leaving its model replicas running without a driver."""

    def stop(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, stop)

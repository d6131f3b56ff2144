"""Entry points for the `octavia` CLI: serve the API, migrate the database, create an admin.

`serve` prepares the database first (see `control_plane.migrator.prepare_database` for the policy: an empty or
our own database is migrated to head; a foreign one, or one newer than this code, is refused), then runs uvicorn.

Several workers, on Linux, each bind their own socket with SO_REUSEPORT, so the kernel spreads connections
evenly over them. uvicorn's own `--workers` shares one listening socket, and whichever process wakes first
accepts every pending connection: under the load benchmark one worker got all 30 keep-alive connections and
the other sat idle (docs/benchmarks.md). Elsewhere uvicorn's supervisor is used.
"""

from __future__ import annotations

import gc
import logging
import multiprocessing
import signal
import socket
import sys
import threading
from types import FrameType

from control_plane.config import Settings
from control_plane.db import create_db_engine, create_session_factory
from control_plane.migrator import prepare_database
from control_plane.users import service as users_service
from control_plane.users.models import User

logger = logging.getLogger("control_plane")


def migrate(settings: Settings | None = None, *, auto_migrate: bool = True) -> str:
    settings = settings or Settings()
    engine = create_db_engine(settings.database_url)
    try:
        return prepare_database(engine, auto_migrate=auto_migrate)
    finally:
        engine.dispose()


def serve(host: str = "127.0.0.1", port: int = 8001, settings: Settings | None = None, workers: int = 1) -> None:
    """Migrates (or refuses pending migrations), then serves. `workers` > 1 runs that many uvicorn processes, each
    building its app from the environment's settings (and each with its jobs worker: job changes lock their row)."""
    import uvicorn

    from control_plane.app import create_app

    settings = settings or Settings()
    logging.basicConfig(level=logging.INFO)
    logger.info(migrate(settings, auto_migrate=settings.auto_migrate))
    if workers > 1 and hasattr(socket, "SO_REUSEPORT") and sys.platform.startswith("linux"):
        sys.exit(_serve_reuse_port(host, port, workers))
    elif workers > 1:
        uvicorn.run("control_plane.app:create_app", factory=True, host=host, port=port, workers=workers,
                    proxy_headers=True)  # fmt: skip
    else:
        app = create_app(settings)
        settle_garbage_collector()
        uvicorn.run(app, host=host, port=port, proxy_headers=True)


# Collections of the youngest generation every 20,000 allocations instead of 700: a request allocates a few
# thousand short-lived objects (mostly freed by reference counting), and the default ran the collector several
# times per request. With `gc.freeze()` the app's import-time objects are never scanned again.
GC_THRESHOLDS = (20_000, 20, 20)


def settle_garbage_collector() -> None:
    """For a serving process, once its app is built: collect, freeze what survives, collect less often. The load
    benchmark's workers spent ~20 % of their CPU in the collector, with ~150 ms full collections as the p99."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def _reuse_port_worker(host: str, port: int) -> None:
    """One worker process: its own SO_REUSEPORT socket, an app built from the environment's settings."""
    import uvicorn

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.set_inheritable(True)
    config = uvicorn.Config("control_plane.app:create_app", factory=True, host=host, port=port, proxy_headers=True)
    config.load()  # builds the app now, so that it is frozen with the rest
    settle_garbage_collector()
    uvicorn.Server(config).run(sockets=[sock])


def _serve_reuse_port(host: str, port: int, workers: int) -> int:
    """Runs `workers` processes until SIGTERM/SIGINT (then stops them gracefully: 0) or until one of them dies
    (then stops the rest: 1, so that systemd or Kubernetes restarts the whole service)."""
    context = multiprocessing.get_context("spawn")
    processes = [context.Process(target=_reuse_port_worker, args=(host, port), name=f"octavia-api-{i}")
                 for i in range(workers)]  # fmt: skip
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        for process in processes:
            process.start()
        logger.info("serving on http://%s:%d with %d worker processes (SO_REUSEPORT)", host, port, workers)
        while not stop.is_set() and all(p.is_alive() for p in processes):
            stop.wait(0.5)
    finally:
        for process in processes:
            if process.is_alive():
                process.terminate()  # SIGTERM: uvicorn finishes the requests in flight
        for process in processes:
            process.join(30)
            if process.is_alive():
                process.kill()
                process.join()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if stop.is_set():
        return 0
    logger.error("a worker process exited (%s); stopping the others",
                 ", ".join(f"{p.name}: {p.exitcode}" for p in processes))  # fmt: skip
    return 1


def create_admin(email: str, password: str, settings: Settings | None = None) -> User:
    """Creates a verified admin, or promotes the existing account with this email; commits."""
    settings = settings or Settings()
    migrate(settings, auto_migrate=settings.auto_migrate)
    engine = create_db_engine(settings.database_url)
    try:
        with create_session_factory(engine).begin() as session:
            return users_service.create_admin(session, email, password)
    finally:
        engine.dispose()

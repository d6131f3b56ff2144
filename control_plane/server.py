"""Entry points for the `octavia` CLI: serve the API, migrate the database, create an admin.

`serve` prepares the database first (see `control_plane.migrator.prepare_database` for the policy: an empty or
our own database is migrated to head; a foreign one, or one newer than this code, is refused), then runs uvicorn.
"""

from __future__ import annotations

import logging

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
    if workers > 1:
        uvicorn.run("control_plane.app:create_app", factory=True, host=host, port=port, workers=workers,
                    proxy_headers=True)  # fmt: skip
    else:
        uvicorn.run(create_app(settings), host=host, port=port, proxy_headers=True)


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

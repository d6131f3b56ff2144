"""Running the Alembic migrations from code (the server, the CLI and the tests), without reading alembic.ini.

Policy (`prepare_database`):
- empty database, or one whose `alembic_version` shows it is ours and behind: upgrade to head, unless
  OCTAVIA_AUTO_MIGRATE=false, in which case refuse and say which command to run;
- tables but no `alembic_version`: not ours, refuse (we never write into someone else's schema);
- a revision this code does not know (the database was migrated by a newer Octavia): refuse.
On PostgreSQL an advisory lock makes concurrent starts (several replicas) migrate one at a time.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, inspect, text

from octavia.errors import OctaviaError

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
_ADVISORY_LOCK_ID = 0x0C7A71A  # arbitrary, constant: "octavia migrations"


class DatabaseNotReadyError(OctaviaError):
    code = "database_not_ready"
    status_code = 503


def alembic_config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("path_separator", "os")
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:
        raise RuntimeError("no migrations found")
    return head


def current_revision(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


def upgrade(connection: Connection, revision: str = "head") -> None:
    command.upgrade(alembic_config(connection), revision)


def prepare_database(engine: Engine, *, auto_migrate: bool = True) -> str:
    """Brings the database to the head revision or raises `DatabaseNotReadyError`; returns what was done."""
    script = ScriptDirectory.from_config(alembic_config())
    head = head_revision()
    with engine.connect() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_lock(:id)"), {"id": _ADVISORY_LOCK_ID})
            connection.commit()
        try:
            return _prepare(connection, script, head, auto_migrate=auto_migrate, url=engine.url.render_as_string())
        finally:
            if connection.dialect.name == "postgresql":
                connection.rollback()
                connection.execute(text("SELECT pg_advisory_unlock(:id)"), {"id": _ADVISORY_LOCK_ID})
                connection.commit()


def _prepare(connection: Connection, script: ScriptDirectory, head: str, *, auto_migrate: bool, url: str) -> str:
    tables = set(inspect(connection).get_table_names())
    current = current_revision(connection)
    connection.rollback()
    if current == head:
        return f"database is up to date (revision {head})"
    if current is None and tables - {"alembic_version"}:
        raise DatabaseNotReadyError(
            f"the database {url} has tables but no Octavia migration history; point OCTAVIA_DATABASE_URL at an "
            "empty database",
            details={"tables": sorted(tables)},
        )
    if current is not None and current not in {rev.revision for rev in script.walk_revisions()}:
        raise DatabaseNotReadyError(
            f"the database is at revision {current}, unknown to this version of Octavia (newer?); upgrade Octavia",
            details={"revision": current, "head": head},
        )
    if not auto_migrate:
        raise DatabaseNotReadyError(
            f"the database is at revision {current or 'none'}, migrations up to {head} are pending; run "
            "`alembic -c control_plane/alembic.ini upgrade head` or set OCTAVIA_AUTO_MIGRATE=true",
            details={"revision": current, "head": head},
        )
    upgrade(connection)
    connection.commit()
    return f"database migrated from {current or 'empty'} to {head}"

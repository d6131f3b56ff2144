from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, inspect, text

from control_plane.migrator import DatabaseNotReadyError, alembic_config, head_revision, prepare_database, upgrade
from control_plane.models import Base
from control_plane.server import create_admin, migrate
from control_plane.users.passwords import verify_password
from tests.control_plane.conftest import PASSWORD, make_settings, make_temp_database

APP_TABLES = {table.name for table in Base.metadata.sorted_tables}


def test_migrations_match_the_models(db_engine: Engine) -> None:
    with db_engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []
        assert context.get_current_revision() == head_revision()


def test_downgrade_to_base_and_back(db_backend: str, tmp_path: Path) -> None:
    database = make_temp_database(db_backend, tmp_path)
    try:
        with database.engine.connect() as connection:
            command.downgrade(alembic_config(connection), "base")
            connection.commit()
            assert set(inspect(connection).get_table_names()) == {"alembic_version"}
            upgrade(connection)
            connection.commit()
            assert set(inspect(connection).get_table_names()) == APP_TABLES | {"alembic_version"}
    finally:
        database.drop()


def test_prepare_database_policy(db_backend: str, tmp_path: Path) -> None:
    database = make_temp_database(db_backend, tmp_path, migrate=False)
    try:
        with pytest.raises(DatabaseNotReadyError, match="pending"):
            prepare_database(database.engine, auto_migrate=False)
        assert prepare_database(database.engine) == f"database migrated from empty to {head_revision()}"
        assert prepare_database(database.engine, auto_migrate=False).startswith("database is up to date")
        with database.engine.begin() as connection:
            connection.execute(text("UPDATE alembic_version SET version_num = 'f00dcafe'"))
        with pytest.raises(DatabaseNotReadyError, match="unknown to this version"):
            prepare_database(database.engine)
    finally:
        database.drop()


def test_a_foreign_database_is_refused(db_backend: str, tmp_path: Path) -> None:
    database = make_temp_database(db_backend, tmp_path, migrate=False)
    try:
        with database.engine.begin() as connection:
            connection.execute(text("CREATE TABLE someone_elses (id INTEGER PRIMARY KEY)"))
        with pytest.raises(DatabaseNotReadyError, match="no Octavia migration history") as refused:
            prepare_database(database.engine)
        assert refused.value.details["tables"] == ["someone_elses"]
    finally:
        database.drop()


def test_create_admin_migrates_and_promotes(tmp_path: Path) -> None:
    settings = make_settings(database_url=f"sqlite:///{tmp_path / 'admin.sqlite3'}")
    admin = create_admin("Root@Example.com", PASSWORD, settings)
    assert (admin.email, admin.is_admin, admin.is_verified) == ("root@example.com", True, True)
    again = create_admin("root@example.com", "a-different-password-42", settings)
    assert again.id == admin.id and verify_password(again.password_hash, PASSWORD)  # promoted, password kept
    assert migrate(settings).startswith("database is up to date")


@pytest.mark.slow
def test_serve_migrates_an_empty_database_and_answers(tmp_path: Path) -> None:
    """The real entry point, as `octavia api` will run it: a fresh data dir, SQLite, uvicorn."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "OCTAVIA_DATA_DIR": str(tmp_path), "OCTAVIA_ENVIRONMENT": "development"}
    env.pop("OCTAVIA_DATABASE_URL", None)
    code = f"from control_plane.server import serve; serve(port={port})"
    process = subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as response:
                    assert response.read() == b'{"status":"ok"}'
                    break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(process.communicate()[0].decode()) from None
                time.sleep(0.2)
    finally:
        process.terminate()
        output = process.communicate(timeout=10)[0].decode()
    assert "database migrated from empty to" in output
    assert (tmp_path / "control_plane.sqlite3").exists()

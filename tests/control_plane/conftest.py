"""Control-plane fixtures: every database test runs on SQLite and on PostgreSQL.

- `db_engine` (session scope, parametrized "sqlite" / "postgresql"): a fresh database migrated with Alembic. SQLite
  is a file in a temp dir; PostgreSQL is a fresh schema in $OCTAVIA_TEST_POSTGRES_URL (default
  postgresql+psycopg://postgres@127.0.0.1:5432/test), dropped at the end. An unreachable PostgreSQL fails the run
  when CI is set, and skips those variants locally.
- `connection` / `session`: one outer transaction per test, rolled back at the end; sessions join it with
  `join_transaction_mode="create_savepoint"`, so their commits and rollbacks stay inside (polar
  `tests/fixtures/database.py`).
- `client`: a TestClient whose requests each get a session on that same connection (the real `get_session`
  dependency commits/rolls back a savepoint).
- `mailbox`: the mails received by a real aiosmtpd SMTP server the app sends to.
"""

from __future__ import annotations

import email
import email.policy
import os
import socket
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Connection, Engine, create_engine, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from control_plane.app import create_app
from control_plane.auth import tokens
from control_plane.auth.tokens import TokenKind
from control_plane.config import Settings
from control_plane.db import create_db_engine, utcnow
from control_plane.migrator import upgrade
from control_plane.users import passwords
from control_plane.users.models import User
from control_plane.users.service import normalize_email

POSTGRES_URL = os.environ.get("OCTAVIA_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
JWT_SECRET = "test-jwt-secret-" + "k" * 40
POLAR_SECRET = "polar_whs_test_secret_0123456789"
PASSWORD = "Correct-Horse-Battery-9"
# One hash for every fixture user: argon2 at OWASP cost is ~20 ms, paid once instead of per test.
PASSWORD_HASH = passwords.hash_password(PASSWORD)
POLAR_PRODUCTS = {"prod_small": 100, "prod_large": 1000}


def postgres_available_or_skip() -> None:
    probe = create_engine(POSTGRES_URL)
    try:
        with probe.connect() as connection:
            connection.execute(text("SELECT 1"))
    except OperationalError as exc:
        message = f"PostgreSQL not reachable at {POSTGRES_URL}: {exc.orig}"
        if os.environ.get("CI"):
            pytest.fail(message + " (CI must test PostgreSQL)")
        pytest.skip(message)
    finally:
        probe.dispose()


@dataclass
class TempDatabase:
    """A migrated (or empty) database: an SQLite file or a PostgreSQL schema, with an engine bound to it."""

    engine: Engine
    drop: Callable[[], None]


def make_temp_database(backend: str, tmp_dir: Any, *, migrate: bool = True) -> TempDatabase:
    if backend == "sqlite":
        engine = create_db_engine(f"sqlite:///{tmp_dir / f'{uuid.uuid4().hex}.sqlite3'}")

        def drop() -> None:
            engine.dispose()

    else:
        postgres_available_or_skip()
        schema = f"octavia_test_{uuid.uuid4().hex[:12]}"
        admin = create_engine(POSTGRES_URL)
        with admin.begin() as connection:
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
        engine = create_db_engine(POSTGRES_URL, connect_args={"options": f"-csearch_path={schema}"})

        def drop() -> None:
            engine.dispose()
            with admin.begin() as connection:
                connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
            admin.dispose()

    if migrate:
        with engine.connect() as connection:
            upgrade(connection)
            connection.commit()
    return TempDatabase(engine, drop)


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def db_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="session")
def db_engine(db_backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    database = make_temp_database(db_backend, tmp_path_factory.mktemp("db"))
    yield database.engine
    database.drop()


@pytest.fixture
def connection(db_engine: Engine) -> Iterator[Connection]:
    connection = db_engine.connect()
    transaction = connection.begin()
    yield connection
    transaction.rollback()
    connection.close()


@pytest.fixture
def session_factory(connection: Connection) -> sessionmaker[Session]:
    return sessionmaker(bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False)


@pytest.fixture
def session(session_factory: sessionmaker[Session]) -> Iterator[Session]:
    session = session_factory()
    yield session
    session.close()


class Mailbox:
    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        self.messages.append(message)
        return "250 Message accepted for delivery"


@pytest.fixture(scope="session")
def smtp_server() -> Iterator[tuple[Controller, Mailbox]]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    mailbox = Mailbox()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield controller, mailbox
    controller.stop()


@pytest.fixture
def mailbox(smtp_server: tuple[Controller, Mailbox]) -> Mailbox:
    smtp_server[1].messages.clear()
    return smtp_server[1]


def make_settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "environment": "development",
        "database_url": "sqlite://",  # unused: tests hand the app their own session factory
        "jwt_secret": JWT_SECRET,
        "smtp_security": "none",
        "polar_webhook_secret": POLAR_SECRET,
        "polar_products": POLAR_PRODUCTS,
        "credits_per_minute": 10,
        "rate_limit_per_minute": 10_000,
        "rate_limit_burst": 10_000,
        "auth_rate_limit_per_minute": 10_000,
        "auth_rate_limit_burst": 10_000,
        "jobs_worker_enabled": False,  # tests drive the jobs reconciler by hand
    }
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
def settings(smtp_server: tuple[Controller, Mailbox], tmp_path: Any) -> Settings:
    controller = smtp_server[0]
    return make_settings(data_dir=tmp_path, smtp_host=controller.hostname, smtp_port=controller.port)


@pytest.fixture
def app(settings: Settings, session_factory: sessionmaker[Session]) -> FastAPI:
    return create_app(settings, session_factory=session_factory)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as client:
        yield client


@dataclass
class TestUser:
    __test__ = False  # not a test class

    user: User
    headers: dict[str, str]

    @property
    def id(self) -> uuid.UUID:
        return self.user.id

    @property
    def email(self) -> str:
        return self.user.email


@pytest.fixture
def make_user(session: Session, settings: Settings) -> Callable[..., TestUser]:
    """Inserts a user (verified unless told) and returns it with `Authorization` headers of an access token."""

    def make(email: str | None = None, *, verified: bool = True, is_admin: bool = False) -> TestUser:
        user = User(
            email=normalize_email(email or f"user-{uuid.uuid4().hex[:10]}@example.com"),
            password_hash=PASSWORD_HASH,
            is_admin=is_admin,
            email_verified_at=utcnow() if verified else None,
        )
        session.add(user)
        session.flush()
        token = tokens.issue(settings, TokenKind.ACCESS, user.id)
        return TestUser(user=user, headers={"Authorization": f"Bearer {token}"})

    return make


def assert_error(response: Any, status_code: int, code: str | None = None) -> dict[str, Any]:
    """The response is `status_code` with the one error shape (and the given code); returns the error object."""
    assert response.status_code == status_code, response.text
    body = response.json()
    assert set(body) == {"error"}, body
    error = body["error"]
    assert set(error) == {"code", "message", "details"}, error
    assert isinstance(error["message"], str) and error["message"]
    assert isinstance(error["details"], dict)
    if code is not None:
        assert error["code"] == code, error
    return dict(error)

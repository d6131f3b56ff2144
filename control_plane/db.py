"""Database plumbing: the declarative base, column types shared by every domain, and the engine factory.

SQLite (the default) gets the SQLAlchemy-documented fix for the sqlite3 driver's legacy transaction mode (BEGIN
emitted by us, so SELECTs, DDL and SAVEPOINTs are transactional) and `BEGIN IMMEDIATE`: SQLite has one writer at a
time anyway, and taking the write lock up front turns read-then-write races into short waits instead of
"database is locked" errors in the middle of a request. PostgreSQL uses row locks (`SELECT ... FOR UPDATE`).

PostgreSQL connections are pinged on checkout only when they sat in the pool for a while (`ping_after_idle`):
`pool_pre_ping` pings every checkout, one more round trip per request (two for an authenticated one) for
connections that were in use a millisecond earlier. A server restart or an idle timeout drops connections that
wait in the pool, and those are the ones that get checked.
"""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

from sqlalchemy import DateTime, Engine, MetaData, create_engine, event, exc
from sqlalchemy.engine import Dialect, make_url
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker
from sqlalchemy.types import TypeDecorator

# Stable constraint names, so Alembic can alter/drop them on every backend.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite stores them naive)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    @property
    def python_type(self) -> type[datetime]:
        return datetime

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTCDateTime column")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UTCDateTime()}


class UUIDPrimaryKey:
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4, sort_order=-10)


class CreatedAt:
    created_at: Mapped[datetime] = mapped_column(default=utcnow, sort_order=10)


PING_AFTER_IDLE_SECONDS = 5.0
_CHECKED_IN_AT = "octavia.checked_in_at"


def ping_after_idle(engine: Engine, idle_seconds: float = PING_AFTER_IDLE_SECONDS) -> None:
    """Checks a pooled connection with a trivial query before handing it out when it sat idle for `idle_seconds`;
    a dead one is replaced (SQLAlchemy retries the checkout after `DisconnectionError`)."""
    dialect = engine.dialect

    @event.listens_for(engine, "checkin")
    def _checked_in(_dbapi_connection: Any, record: Any) -> None:
        record.info[_CHECKED_IN_AT] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checked_out(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        checked_in_at = record.info.get(_CHECKED_IN_AT)
        if checked_in_at is None or time.monotonic() - checked_in_at < idle_seconds:
            return  # a new connection, or one in use moments ago
        try:
            dialect.do_ping(dbapi_connection)  # the ping `pool_pre_ping` sends (outside a transaction)
        except dialect.loaded_dbapi.Error as error:
            raise exc.DisconnectionError(f"pooled connection is gone: {error}") from error


def create_db_engine(url: str, *, pool_size: int | None = None, max_overflow: int | None = None,
                     **kwargs: Any) -> Engine:  # fmt: skip
    """An engine for `url`; SQLite files get their folder created and the transaction fixes above. The pool
    sizes apply to PostgreSQL (SQLite connections are cheap files, and one writer at a time anyway)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        pool = {k: v for k, v in (("pool_size", pool_size), ("max_overflow", max_overflow)) if v is not None}
        engine = create_engine(url, **pool, **kwargs)
        ping_after_idle(engine)
        return engine
    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    connect_args = {"check_same_thread": False, "timeout": 30, **kwargs.pop("connect_args", {})}
    engine = create_engine(url, connect_args=connect_args, **kwargs)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # the driver emits no BEGIN; `_on_begin` does
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def create_session_factory(bind: Any, **kwargs: Any) -> sessionmaker[Session]:
    return sessionmaker(bind=bind, expire_on_commit=False, autoflush=True, **kwargs)

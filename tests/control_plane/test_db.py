"""The PostgreSQL engine's connection checks: a connection that sat idle in the pool is pinged and replaced when
the server dropped it; one that was in use a moment ago is handed out without a ping (a round trip per request)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, text

from control_plane.db import create_db_engine, ping_after_idle
from tests.control_plane.conftest import POSTGRES_URL, postgres_available_or_skip


@pytest.fixture
def engine() -> Iterator[Engine]:
    postgres_available_or_skip()
    engine = create_engine(POSTGRES_URL, pool_size=1, max_overflow=0)
    ping_after_idle(engine, idle_seconds=0.2)
    yield engine
    engine.dispose()


def _backend_pid(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(connection.execute(text("SELECT pg_backend_pid()")).scalar_one())


def _count_pings(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    pings: list[int] = []
    original = engine.dialect.do_ping

    def counted(dbapi_connection: Any) -> bool:
        pings.append(1)
        return original(dbapi_connection)

    monkeypatch.setattr(engine.dialect, "do_ping", counted)
    return pings


def test_a_connection_the_server_dropped_while_idle_is_replaced(engine: Engine) -> None:
    first = _backend_pid(engine)
    admin = create_engine(POSTGRES_URL)
    try:
        with admin.connect() as connection:
            assert connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": first}).scalar_one()
    finally:
        admin.dispose()
    time.sleep(0.3)  # idle longer than the threshold: checked before use
    second = _backend_pid(engine)  # without the check: OperationalError (the server closed the connection)
    assert second != first


def test_a_busy_connection_is_not_pinged(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    pings = _count_pings(engine, monkeypatch)
    pid = _backend_pid(engine)
    for _ in range(5):
        assert _backend_pid(engine) == pid  # same pooled connection, checked out right after its check-in
    assert pings == []
    time.sleep(0.3)
    assert _backend_pid(engine) == pid
    assert pings == [1]


def test_the_application_engine_checks_idle_connections(monkeypatch: pytest.MonkeyPatch) -> None:
    postgres_available_or_skip()
    engine = create_db_engine(POSTGRES_URL, pool_size=1, max_overflow=0)
    try:
        assert not engine.pool._pre_ping  # replaced by the idle check
        pings = _count_pings(engine, monkeypatch)
        _backend_pid(engine)
        _backend_pid(engine)
        assert pings == []
    finally:
        engine.dispose()

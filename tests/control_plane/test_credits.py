from __future__ import annotations

import threading
import uuid
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, delete, select
from sqlalchemy.orm import Session

from control_plane.credits import service
from control_plane.credits.models import CreditAccount, CreditEntry, CreditReservation, EntryKind, ReservationStatus
from control_plane.credits.repository import CreditRepository
from control_plane.db import create_session_factory
from control_plane.users.models import User
from tests.control_plane.conftest import PASSWORD_HASH, TestUser, assert_error


def _assert_ledger_matches_balance(session: Session, user_id: uuid.UUID) -> service.Balance:
    balance = service.get_balance(session, user_id)
    assert CreditRepository(session).entry_sums(user_id) == (balance.balance, balance.reserved)
    assert 0 <= balance.reserved <= balance.balance
    return balance


# --- service -------------------------------------------------------------------------------------------------


def test_reserve_capture_release_keep_the_ledger_equal_to_the_balance(
    session: Session, make_user: Callable[..., TestUser]
) -> None:
    user = make_user()
    service.grant(session, user.id, 100, reference="welcome")
    job = service.reserve(session, user.id, 60, "job-1")
    assert service.get_balance(session, user.id) == service.Balance(balance=100, reserved=60)
    with pytest.raises(service.InsufficientCreditsError) as short:
        service.reserve(session, user.id, 50, "job-2")
    assert short.value.status_code == 402
    assert short.value.details == {"required": 50, "available": 40, "shortfall": 10}

    captured = service.capture(session, job.id, 45)
    assert captured.status is ReservationStatus.CAPTURED and captured.captured == 45
    assert service.get_balance(session, user.id) == service.Balance(balance=55, reserved=0)
    # Idempotent: a second capture (even with another amount) and a late release change nothing.
    service.capture(session, job.id, 60)
    service.release(session, job.id)
    assert _assert_ledger_matches_balance(session, user.id) == service.Balance(55, 0)

    failed = service.reserve(session, user.id, 55, "job-3")
    service.release(session, failed.id)
    service.release(session, failed.id)
    with pytest.raises(service.ReservationSettledError):
        service.capture(session, failed.id, 10)
    assert _assert_ledger_matches_balance(session, user.id) == service.Balance(55, 0)

    kinds = [
        e.kind
        for e in session.scalars(select(CreditEntry).where(CreditEntry.user_id == user.id).order_by(CreditEntry.id))
    ]
    assert kinds == [
        EntryKind.GRANT,
        EntryKind.RESERVE,
        EntryKind.CAPTURE,
        EntryKind.RELEASE,
        EntryKind.RESERVE,
        EntryKind.RELEASE,
    ]


def test_reserve_is_idempotent_on_job_ref(session: Session, make_user: Callable[..., TestUser]) -> None:
    user = make_user()
    service.grant(session, user.id, 100)
    first = service.reserve(session, user.id, 30, "job-x")
    again = service.reserve(session, user.id, 30, "job-x")
    assert again.id == first.id
    assert service.get_balance(session, user.id).reserved == 30


def test_full_capture_writes_no_release(session: Session, make_user: Callable[..., TestUser]) -> None:
    user = make_user()
    service.grant(session, user.id, 10)
    reservation = service.capture(session, service.reserve(session, user.id, 10, "j").id, 10)
    entries = session.scalars(select(CreditEntry).where(CreditEntry.reservation_id == reservation.id)).all()
    assert [(e.kind, e.amount, e.reserved_delta) for e in entries] == [
        (EntryKind.RESERVE, 0, 10),
        (EntryKind.CAPTURE, -10, -10),
    ]
    assert _assert_ledger_matches_balance(session, user.id) == service.Balance(0, 0)


def test_bad_arguments_raise_value_error(session: Session, make_user: Callable[..., TestUser]) -> None:
    user = make_user()
    service.grant(session, user.id, 10)
    reservation = service.reserve(session, user.id, 5, "j")
    with pytest.raises(ValueError):
        service.grant(session, user.id, 0)
    with pytest.raises(ValueError):
        service.reserve(session, user.id, -1, "k")
    with pytest.raises(ValueError):
        service.capture(session, reservation.id, 6)
    with pytest.raises(service.ReservationNotFoundError):
        service.capture(session, uuid.uuid4(), 1)


def test_grant_with_external_ref_applies_once(session: Session, make_user: Callable[..., TestUser]) -> None:
    user = make_user()
    assert service.grant(session, user.id, 100, kind=EntryKind.PURCHASE, external_ref="polar:order:1") is not None
    assert service.grant(session, user.id, 100, kind=EntryKind.PURCHASE, external_ref="polar:order:1") is None
    assert service.get_balance(session, user.id).balance == 100


def test_the_database_refuses_an_overdraw_even_past_the_service(
    session: Session, make_user: Callable[..., TestUser]
) -> None:
    from sqlalchemy.exc import IntegrityError

    user = make_user()
    service.grant(session, user.id, 10)
    account = CreditRepository(session).lock_account(user.id)
    account.reserved = 11
    with pytest.raises(IntegrityError), session.begin_nested():
        session.flush()


def test_estimate_counts_started_minutes_and_languages(settings: object) -> None:
    from control_plane.config import Settings

    assert isinstance(settings, Settings)
    quote = service.estimate(settings, 61, ["es", "spa", "es-MX", "FR"])
    assert (quote.started_minutes, quote.target_languages, quote.credits) == (2, ["es", "fr"], 2 * 2 * 10)
    assert service.estimate(settings, 60, ["de"]).credits == 10
    assert service.estimate(settings, 0.5, ["de"]).credits == 10


def test_concurrent_reservations_cannot_overdraw(db_engine: Engine) -> None:
    """Real concurrent transactions (committed, no test rollback): FOR UPDATE on PostgreSQL, BEGIN IMMEDIATE on
    SQLite. 8 threads reserve 30 of 100 credits: exactly 3 succeed."""
    factory = create_session_factory(db_engine)
    with factory.begin() as setup:
        user = User(email=f"race-{uuid.uuid4().hex[:8]}@example.com", password_hash=PASSWORD_HASH)
        setup.add(user)
        setup.flush()
        service.grant(setup, user.id, 100)
    user_id = user.id
    barrier = threading.Barrier(8)
    outcomes: list[str] = []

    def worker(n: int) -> None:
        barrier.wait()
        try:
            with factory.begin() as session:
                service.reserve(session, user_id, 30, f"job-{n}")
            outcomes.append("ok")
        except service.InsufficientCreditsError:
            outcomes.append("short")

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert sorted(outcomes) == ["ok"] * 3 + ["short"] * 5
        with factory() as check:
            assert _assert_ledger_matches_balance(check, user_id) == service.Balance(balance=100, reserved=90)
    finally:
        with factory.begin() as cleanup:
            for model in (CreditEntry, CreditReservation, CreditAccount):
                cleanup.execute(delete(model).where(model.user_id == user_id))
            cleanup.execute(delete(User).where(User.id == user_id))


# --- endpoints -----------------------------------------------------------------------------------------------


def test_balance_endpoint(client: TestClient, session: Session, make_user: Callable[..., TestUser]) -> None:
    user = make_user()
    assert client.get("/v1/credits", headers=user.headers).json() == {"balance": 0, "reserved": 0, "available": 0}
    service.grant(session, user.id, 100)
    service.reserve(session, user.id, 25, "job")
    assert client.get("/v1/credits", headers=user.headers).json() == {"balance": 100, "reserved": 25, "available": 75}
    assert_error(client.get("/v1/credits"), 401, "not_authenticated")


def test_ledger_endpoint_paginates_newest_first(
    client: TestClient, session: Session, make_user: Callable[..., TestUser]
) -> None:
    user = make_user()
    for amount in range(1, 6):
        service.grant(session, user.id, amount, reference=f"grant {amount}")
    first = client.get("/v1/credits/ledger", params={"limit": 3}, headers=user.headers).json()
    assert [e["amount"] for e in first["items"]] == [5, 4, 3]
    assert first["items"][0]["kind"] == "grant" and first["items"][0]["reference"] == "grant 5"
    second = client.get(
        "/v1/credits/ledger", params={"limit": 3, "cursor": first["next_cursor"]}, headers=user.headers
    ).json()
    assert [e["amount"] for e in second["items"]] == [2, 1]
    assert second["next_cursor"] is None
    assert_error(client.get("/v1/credits/ledger", params={"cursor": "zz"}, headers=user.headers), 422, "invalid_cursor")
    assert_error(client.get("/v1/credits/ledger", params={"limit": -1}, headers=user.headers), 422, "validation_error")


def test_users_cannot_see_each_others_ledger(
    client: TestClient, session: Session, make_user: Callable[..., TestUser]
) -> None:
    alice, bob = make_user(), make_user()
    service.grant(session, alice.id, 500, reference="alice's money")
    assert client.get("/v1/credits/ledger", headers=bob.headers).json() == {"items": [], "next_cursor": None}
    assert client.get("/v1/credits", headers=bob.headers).json()["balance"] == 0
    # Bob cannot walk into Alice's ledger with a cursor either: cursors only bound his own rows.
    alice_page = client.get("/v1/credits/ledger", params={"limit": 1}, headers=alice.headers).json()
    assert alice_page["items"][0]["reference"] == "alice's money"
    crafted = client.get("/v1/credits/ledger", params={"cursor": "WzEwMDAwMDAwXQ"}, headers=bob.headers).json()
    assert crafted["items"] == []


def test_estimate_endpoint(client: TestClient, session: Session, make_user: Callable[..., TestUser]) -> None:
    user = make_user()
    service.grant(session, user.id, 50)
    response = client.post(
        "/v1/credits/estimate", json={"duration_seconds": 125, "target_languages": ["es", "fr"]}, headers=user.headers
    )
    assert response.status_code == 200, response.text
    assert response.json() == {
        "credits": 60,
        "started_minutes": 3,
        "target_languages": ["es", "fr"],
        "credits_per_minute": 10,
        "available": 50,
        "sufficient": False,
    }


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"duration_seconds": 0, "target_languages": ["es"]}, "validation_error"),
        ({"duration_seconds": -5, "target_languages": ["es"]}, "validation_error"),
        ({"duration_seconds": 10**9, "target_languages": ["es"]}, "validation_error"),
        ({"duration_seconds": "long", "target_languages": ["es"]}, "validation_error"),
        ({"duration_seconds": 60, "target_languages": []}, "validation_error"),
        ({"duration_seconds": 60, "target_languages": "es"}, "validation_error"),
        ({"duration_seconds": 60, "target_languages": ["es"] * 21}, "validation_error"),
        ({"duration_seconds": 60, "target_languages": ["klingon"]}, "unsupported_language"),
        ({"duration_seconds": 60, "target_languages": ["zz"]}, "unsupported_language"),
        ({"target_languages": ["es"]}, "validation_error"),
    ],
)
def test_estimate_refuses_bad_input(
    client: TestClient, make_user: Callable[..., TestUser], body: dict[str, object], code: str
) -> None:
    assert_error(client.post("/v1/credits/estimate", json=body, headers=make_user().headers), 422, code)


def test_estimate_refuses_nan(client: TestClient, make_user: Callable[..., TestUser]) -> None:
    body = b'{"duration_seconds": NaN, "target_languages": ["es"]}'
    response = client.post(
        "/v1/credits/estimate", content=body, headers={**make_user().headers, "Content-Type": "application/json"}
    )
    assert_error(response, 422, "validation_error")


def test_admin_grant(client: TestClient, session: Session, make_user: Callable[..., TestUser]) -> None:
    admin, user = make_user(is_admin=True), make_user()
    by_id = client.post(
        "/v1/admin/credits/grant",
        json={"user_id": str(user.id), "amount": 250, "reason": "beta tester"},
        headers=admin.headers,
    )
    assert by_id.status_code == 201, by_id.text
    body = by_id.json()
    assert body["balance"] == {"balance": 250, "reserved": 0, "available": 250}
    assert body["entry"]["kind"] == "grant" and body["entry"]["amount"] == 250
    assert admin.email in body["entry"]["reference"]
    by_email = client.post(
        "/v1/admin/credits/grant", json={"email": user.email.upper(), "amount": 5, "reason": "x"}, headers=admin.headers
    )
    assert by_email.json()["balance"]["balance"] == 255
    assert _assert_ledger_matches_balance(session, user.id).balance == 255


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"amount": 5, "reason": "x"}, 422, "validation_error"),
        ({"user_id": "USER", "email": "a@example.com", "amount": 5, "reason": "x"}, 422, "validation_error"),
        ({"user_id": "USER", "amount": 0, "reason": "x"}, 422, "validation_error"),
        ({"user_id": "USER", "amount": 10**12, "reason": "x"}, 422, "validation_error"),
        ({"user_id": "USER", "amount": 5, "reason": ""}, 422, "validation_error"),
        ({"user_id": "not-a-uuid", "amount": 5, "reason": "x"}, 422, "validation_error"),
        ({"user_id": str(uuid.UUID(int=1)), "amount": 5, "reason": "x"}, 404, "user_not_found"),
        ({"email": "ghost@example.com", "amount": 5, "reason": "x"}, 404, "user_not_found"),
        ({"email": "not an email", "amount": 5, "reason": "x"}, 422, "invalid_email"),
    ],
)
def test_admin_grant_refuses_bad_input(
    client: TestClient, make_user: Callable[..., TestUser], body: dict[str, object], status: int, code: str
) -> None:
    admin, user = make_user(is_admin=True), make_user()
    body = {k: (str(user.id) if v == "USER" else v) for k, v in body.items()}
    assert_error(client.post("/v1/admin/credits/grant", json=body, headers=admin.headers), status, code)


def test_admin_grant_is_for_admins_only(client: TestClient, make_user: Callable[..., TestUser]) -> None:
    user = make_user()
    body = {"user_id": str(user.id), "amount": 5, "reason": "self-service"}
    assert_error(client.post("/v1/admin/credits/grant", json=body, headers=user.headers), 403, "admin_required")
    assert_error(client.post("/v1/admin/credits/grant", json=body), 401, "not_authenticated")
    assert client.get("/v1/credits", headers=user.headers).json()["balance"] == 0

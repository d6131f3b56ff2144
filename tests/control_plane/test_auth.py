from __future__ import annotations

import base64
import json
import re
import uuid
from collections.abc import Callable
from datetime import timedelta
from urllib.parse import parse_qs, urlparse

import jwt
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from control_plane.auth import tokens
from control_plane.auth.models import RefreshToken
from control_plane.auth.tokens import TokenKind
from control_plane.config import Settings
from control_plane.credits import service as credits_service
from control_plane.db import utcnow
from control_plane.users.models import User
from control_plane.users.passwords import password_problems, verify_password
from tests.control_plane.conftest import JWT_SECRET, PASSWORD, Mailbox, TestUser, assert_error


def _verification_token(mailbox: Mailbox, to: str) -> str:
    (message,) = [m for m in mailbox.messages if m["To"] == to]
    body = message.get_content()
    link = re.search(r"https?://\S+/v1/auth/verify\?\S+", body)
    assert link, body
    return parse_qs(urlparse(link.group(0)).query)["token"][0]


def _signup_and_verify(client: TestClient, mailbox: Mailbox, email: str) -> None:
    assert client.post("/v1/auth/signup", json={"email": email, "password": PASSWORD}).status_code == 201
    assert client.get("/v1/auth/verify", params={"token": _verification_token(mailbox, email)}).status_code == 200


def _login(client: TestClient, email: str, password: str = PASSWORD) -> dict[str, str]:
    response = client.post("/v1/auth/login", json={"email": email, "password": password})
    assert response.status_code == 200, response.text
    return dict(response.json())


# --- signup, verification mail over real SMTP, verify --------------------------------------------------------


def test_signup_sends_a_verification_mail_over_smtp(client: TestClient, mailbox: Mailbox, session: Session) -> None:
    response = client.post("/v1/auth/signup", json={"email": "  Ada.Lovelace@Example.COM ", "password": PASSWORD})
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["email"] == "ada.lovelace@example.com"
    assert body["email_verified"] is False and body["is_admin"] is False
    assert "password" not in json.dumps(body)

    (message,) = mailbox.messages
    assert message["To"] == "ada.lovelace@example.com"
    assert message["Subject"] == "Confirm your Octavia account"
    token = _verification_token(mailbox, "ada.lovelace@example.com")
    assert jwt.get_unverified_header(token)["typ"] == "email-verify+jwt"

    stored = session.scalars(select(User).where(User.email == "ada.lovelace@example.com")).one()
    assert stored.password_hash.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    assert verify_password(stored.password_hash, PASSWORD)


def test_verify_then_login(client: TestClient, mailbox: Mailbox) -> None:
    email = "grace@example.com"
    client.post("/v1/auth/signup", json={"email": email, "password": PASSWORD})
    assert_error(client.post("/v1/auth/login", json={"email": email, "password": PASSWORD}), 403, "email_not_verified")

    token = _verification_token(mailbox, email)
    first = client.get("/v1/auth/verify", params={"token": token})
    assert first.status_code == 200 and first.json()["email_verified"] is True
    assert client.get("/v1/auth/verify", params={"token": token}).status_code == 200  # idempotent

    pair = _login(client, "GRACE@example.com")
    assert pair["token_type"] == "bearer" and pair["expires_in"] == 900
    me = client.get("/v1/users/me", headers={"Authorization": f"Bearer {pair['access_token']}"})
    assert me.status_code == 200 and me.json()["email"] == email


def test_signup_bonus_is_granted_once_at_verification(
    client: TestClient, mailbox: Mailbox, session: Session, settings: Settings
) -> None:
    client.app.state.settings = settings.model_copy(update={"signup_credits": 30})  # type: ignore[attr-defined]
    _signup_and_verify(client, mailbox, "bonus@example.com")
    client.get("/v1/auth/verify", params={"token": _verification_token(mailbox, "bonus@example.com")})
    user = session.scalars(select(User).where(User.email == "bonus@example.com")).one()
    assert credits_service.get_balance(session, user.id).balance == 30


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        ({"email": "a@example.com", "password": "short1!"}, "weak_password"),
        ({"email": "a@example.com", "password": "aaaaaaaaaaaaaaaa"}, "weak_password"),
        ({"email": "a@example.com", "password": "password123"}, "weak_password"),
        ({"email": "longname@example.com", "password": "my-longname-pass"}, "weak_password"),
        ({"email": "no-at-sign", "password": PASSWORD}, "validation_error"),
        ({"email": "a@example.com"}, "validation_error"),
        ({"email": "a@example.com", "password": ""}, "validation_error"),
        ({"email": "a@example.com", "password": "x" * 2000}, "validation_error"),
        ({"email": ["a@example.com"], "password": PASSWORD}, "validation_error"),
    ],
)
def test_signup_refuses_bad_input(client: TestClient, mailbox: Mailbox, payload: dict[str, object], code: str) -> None:
    assert_error(client.post("/v1/auth/signup", json=payload), 422, code)
    assert mailbox.messages == []


def test_weak_password_error_lists_the_problems() -> None:
    assert password_problems("qwerty", "x@example.com") == [
        "must have at least 10 characters",
        "is a commonly used password",
    ]
    assert password_problems("aaa", "x@example.com") == [
        "must have at least 10 characters",
        "must use at least 5 different characters",
    ]
    assert password_problems("Sunshine2024!", "x@example.com") == ["is a commonly used password"]
    assert password_problems(PASSWORD, "x@example.com") == []


def test_duplicate_signup_is_409_whatever_the_case(client: TestClient, mailbox: Mailbox) -> None:
    assert client.post("/v1/auth/signup", json={"email": "dup@example.com", "password": PASSWORD}).status_code == 201
    response = client.post("/v1/auth/signup", json={"email": "DUP@Example.com", "password": PASSWORD})
    assert_error(response, 409, "email_taken")
    assert len(mailbox.messages) == 1


def test_signup_fails_cleanly_when_mail_cannot_be_sent(
    client: TestClient, settings: Settings, session: Session
) -> None:
    from control_plane.mail import SmtpMailer

    client.app.state.mailer = SmtpMailer(settings.model_copy(update={"smtp_port": 1, "smtp_timeout_seconds": 2}))  # type: ignore[attr-defined]
    response = client.post("/v1/auth/signup", json={"email": "nomail@example.com", "password": PASSWORD})
    assert_error(response, 503, "mail_delivery_failed")
    assert session.scalars(select(User).where(User.email == "nomail@example.com")).first() is None  # rolled back


@pytest.mark.parametrize(
    "token_kind",
    ["garbage", "access", "expired", "other_email"],
)
def test_verify_refuses_bad_tokens(
    client: TestClient, settings: Settings, make_user: Callable[..., TestUser], token_kind: str
) -> None:
    user = make_user(verified=False)
    token = {
        "garbage": "not.a.token",
        "access": tokens.issue(settings, TokenKind.ACCESS, user.id),
        "expired": tokens.issue(
            settings.model_copy(update={"verification_token_ttl_seconds": -10}),
            TokenKind.VERIFY_EMAIL,
            user.id,
            email=user.email,
        ),
        "other_email": tokens.issue(settings, TokenKind.VERIFY_EMAIL, user.id, email="someone@else.com"),
    }[token_kind]
    assert_error(client.get("/v1/auth/verify", params={"token": token}), 400, "invalid_verification_token")
    assert_error(client.get("/v1/auth/verify"), 422, "validation_error")


def test_resend_verification_mails_only_unverified_accounts(
    client: TestClient, mailbox: Mailbox, make_user: Callable[..., TestUser]
) -> None:
    unverified = make_user(verified=False)
    verified = make_user()
    for email in (unverified.email, verified.email, "nobody@example.com", "not an email"):
        response = client.post("/v1/auth/verify/resend", json={"email": email})
        assert response.status_code == 202 and response.json() == {"status": "accepted"}
    assert [m["To"] for m in mailbox.messages] == [unverified.email]
    assert_error(client.post("/v1/auth/verify/resend", json={}), 422, "validation_error")


# --- login ---------------------------------------------------------------------------------------------------


def test_login_refuses_wrong_credentials(client: TestClient, make_user: Callable[..., TestUser]) -> None:
    user = make_user()
    wrong = client.post("/v1/auth/login", json={"email": user.email, "password": PASSWORD + "x"})
    unknown = client.post("/v1/auth/login", json={"email": "ghost@example.com", "password": PASSWORD})
    invalid = client.post("/v1/auth/login", json={"email": "not an email", "password": PASSWORD})
    for response in (wrong, unknown, invalid):
        assert_error(response, 401, "invalid_credentials")
    assert wrong.json() == unknown.json()  # no account enumeration
    assert_error(client.post("/v1/auth/login", json={"email": user.email}), 422, "validation_error")


def test_unverified_user_cannot_log_in(client: TestClient, make_user: Callable[..., TestUser]) -> None:
    user = make_user(verified=False)
    error = assert_error(
        client.post("/v1/auth/login", json={"email": user.email, "password": PASSWORD}), 403, "email_not_verified"
    )
    assert "resend" in error["message"]


# --- refresh rotation, reuse detection, logout ----------------------------------------------------------------


def test_refresh_rotates_and_reuse_revokes_the_family(
    client: TestClient, make_user: Callable[..., TestUser], session: Session
) -> None:
    user = make_user()
    first = _login(client, user.email)
    second = client.post("/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert second.status_code == 200, second.text
    second_pair = second.json()
    assert second_pair["refresh_token"] != first["refresh_token"]
    third = client.post("/v1/auth/refresh", json={"refresh_token": second_pair["refresh_token"]})
    assert third.status_code == 200
    # A separate login (another device) is another family and must survive.
    other_device = _login(client, user.email)

    # The first token is presented again: theft. The whole family dies, including the newest token.
    assert_error(
        client.post("/v1/auth/refresh", json={"refresh_token": first["refresh_token"]}), 401, "refresh_token_reused"
    )
    newest = third.json()["refresh_token"]
    error = assert_error(client.post("/v1/auth/refresh", json={"refresh_token": newest}), 401, "invalid_token")
    assert error["details"]["reason"] == "revoked"
    assert client.post("/v1/auth/refresh", json={"refresh_token": other_device["refresh_token"]}).status_code == 200

    family = session.scalars(select(RefreshToken).where(RefreshToken.user_id == user.id)).all()
    revoked = [t for t in family if t.revoked_at is not None]
    assert len(revoked) == 3  # first, second, third of the stolen family; committed despite the 401


def test_logout_revokes_the_refresh_token(
    client: TestClient, make_user: Callable[..., TestUser], settings: Settings
) -> None:
    user = make_user()
    pair = _login(client, user.email)
    assert client.post("/v1/auth/logout", json={"refresh_token": pair["refresh_token"]}).status_code == 204
    assert_error(client.post("/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]}), 401, "invalid_token")
    assert_error(client.post("/v1/auth/logout", json={"refresh_token": "garbage"}), 401, "invalid_token")
    assert_error(client.post("/v1/auth/logout", json={}), 422, "validation_error")
    unknown = tokens.issue(settings, TokenKind.REFRESH, user.id, fam=str(uuid.uuid4()))
    assert_error(client.post("/v1/auth/logout", json={"refresh_token": unknown}), 401, "invalid_token")


def test_refresh_refuses_an_access_token_and_garbage(client: TestClient, make_user: Callable[..., TestUser]) -> None:
    user = make_user()
    pair = _login(client, user.email)
    for token in (pair["access_token"], "garbage", ""):
        response = client.post("/v1/auth/refresh", json={"refresh_token": token})
        assert response.status_code in (401, 422)
        assert_error(response, response.status_code)


# --- JWT negative tests (RFC 8725) ---------------------------------------------------------------------------


def _b64(data: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


def _claims(settings: Settings, user_id: uuid.UUID, **overrides: object) -> dict[str, object]:
    now = utcnow()
    claims: dict[str, object] = {
        "iss": settings.jwt_issuer,
        "aud": settings.jwt_audience,
        "sub": str(user_id),
        "iat": int(now.timestamp()),
        "exp": int((now + timedelta(minutes=5)).timestamp()),
        "jti": str(uuid.uuid4()),
    }
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


def _forge(settings: Settings, user_id: uuid.UUID, case: str) -> str:
    header = {"typ": "at+jwt"}
    if case == "alg_none":
        return f"{_b64({'alg': 'none', 'typ': 'at+jwt'})}.{_b64(_claims(settings, user_id))}."
    if case == "wrong_key":
        return jwt.encode(_claims(settings, user_id), "another-secret-" + "z" * 40, algorithm="HS256", headers=header)
    if case == "hs512_same_key":
        return jwt.encode(_claims(settings, user_id), JWT_SECRET, algorithm="HS512", headers=header)
    if case == "wrong_aud":
        return jwt.encode(_claims(settings, user_id, aud="someone-else"), JWT_SECRET, algorithm="HS256", headers=header)
    if case == "wrong_iss":
        return jwt.encode(_claims(settings, user_id, iss="evil"), JWT_SECRET, algorithm="HS256", headers=header)
    if case == "expired":
        past = int((utcnow() - timedelta(hours=1)).timestamp())
        return jwt.encode(_claims(settings, user_id, exp=past), JWT_SECRET, algorithm="HS256", headers=header)
    if case == "no_exp":
        return jwt.encode(_claims(settings, user_id, exp=None), JWT_SECRET, algorithm="HS256", headers=header)
    if case == "refresh_as_access":
        return tokens.issue(settings, TokenKind.REFRESH, user_id)
    if case == "verify_as_access":
        return tokens.issue(settings, TokenKind.VERIFY_EMAIL, user_id, email="x@example.com")
    if case == "tampered":
        token = tokens.issue(settings, TokenKind.ACCESS, user_id)
        head, _, signature = token.split(".")
        return f"{head}.{_b64(_claims(settings, uuid.uuid4()))}.{signature}"
    if case == "unknown_subject":
        return tokens.issue(settings, TokenKind.ACCESS, uuid.uuid4())
    if case == "non_uuid_subject":
        return jwt.encode(_claims(settings, user_id, sub="admin"), JWT_SECRET, algorithm="HS256", headers=header)
    raise AssertionError(case)


@pytest.mark.parametrize(
    "case",
    [
        "alg_none",
        "wrong_key",
        "hs512_same_key",
        "wrong_aud",
        "wrong_iss",
        "expired",
        "no_exp",
        "refresh_as_access",
        "verify_as_access",
        "tampered",
        "unknown_subject",
        "non_uuid_subject",
    ],
)
def test_forged_or_misused_tokens_are_refused(
    client: TestClient, make_user: Callable[..., TestUser], settings: Settings, case: str
) -> None:
    user = make_user()
    assert client.get("/v1/users/me", headers=user.headers).status_code == 200  # the real token works
    response = client.get("/v1/users/me", headers={"Authorization": f"Bearer {_forge(settings, user.id, case)}"})
    assert_error(response, 401, "invalid_token")
    assert response.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize("header", [None, "Basic dXNlcjpwYXNz", "Bearer", "Token abc"])
def test_missing_or_malformed_authorization_is_401(client: TestClient, header: str | None) -> None:
    headers = {"Authorization": header} if header else {}
    assert_error(client.get("/v1/users/me", headers=headers), 401, "not_authenticated")


def test_auth_endpoints_are_rate_limited_per_client(client: TestClient, settings: Settings) -> None:
    from control_plane.ratelimit import TokenBucketLimiter

    client.app.state.auth_rate_limiter = TokenBucketLimiter(per_minute=2, burst=2)  # type: ignore[attr-defined]
    for _ in range(2):
        assert_error(client.post("/v1/auth/login", json={"email": "x@example.com", "password": "p"}), 401)
    response = client.post("/v1/auth/login", json={"email": "x@example.com", "password": "p"})
    assert_error(response, 429, "rate_limited")
    assert response.headers["retry-after"] == "30"

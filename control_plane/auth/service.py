"""Signup with email verification, login, refresh-token rotation with reuse detection, logout.

Refresh tokens rotate: each refresh marks the presented token used and issues a new one in the same family. A used
token presented again means it leaked (or a client raced itself): the whole family is revoked, so both the thief
and the user must log in again (OAuth 2.0 Security BCP, RFC 9700 §4.14.2). Access tokens are stateless and short
lived (15 min by default); logout revokes the refresh family, access tokens expire on their own.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import urlencode

from sqlalchemy.orm import Session

from control_plane.auth import tokens
from control_plane.auth.models import RefreshToken
from control_plane.auth.repository import RefreshTokenRepository
from control_plane.auth.tokens import InvalidTokenError, TokenKind
from control_plane.config import Settings
from control_plane.credits import service as credits_service
from control_plane.credits.models import EntryKind
from control_plane.db import utcnow
from control_plane.errors import InvalidRequestError, NotAuthenticatedError, PermissionDeniedError
from control_plane.mail import Mailer, build_message
from control_plane.users import passwords
from control_plane.users import service as users_service
from control_plane.users.models import User
from control_plane.users.repository import UserRepository


class InvalidCredentialsError(NotAuthenticatedError):
    code = "invalid_credentials"


class EmailNotVerifiedError(PermissionDeniedError):
    code = "email_not_verified"


class InvalidVerificationTokenError(InvalidRequestError):
    status_code = 400
    code = "invalid_verification_token"


class RefreshTokenReusedError(NotAuthenticatedError):
    code = "refresh_token_reused"
    persist_changes = True  # the family revocation must be committed although the request fails


@dataclass(frozen=True)
class TokenPair:
    access_token: str
    refresh_token: str
    expires_in: int


def signup(session: Session, settings: Settings, mailer: Mailer, email: str, password: str) -> User:
    user = users_service.create_user(session, email, password)
    send_verification_mail(settings, mailer, user)
    return user


def send_verification_mail(settings: Settings, mailer: Mailer, user: User) -> None:
    token = tokens.issue(settings, TokenKind.VERIFY_EMAIL, user.id, email=user.email)
    link = f"{settings.public_url.rstrip('/')}/v1/auth/verify?{urlencode({'token': token})}"
    hours = settings.verification_token_ttl_seconds // 3600
    text = (
        "Welcome to Octavia.\n\n"
        f"Confirm your email address by opening this link (valid for {hours} hours):\n\n{link}\n\n"
        "If you did not sign up, ignore this message.\n"
    )
    mailer.send(build_message(settings, to=user.email, subject="Confirm your Octavia account", text=text))


def resend_verification(session: Session, settings: Settings, mailer: Mailer, email: str) -> None:
    """Sends a new link to an unverified account; silent otherwise, so it reveals nothing about accounts."""
    try:
        user = users_service.get_user_by_email(session, email)
    except users_service.InvalidEmailError:
        return
    if user is not None and not user.is_verified:
        send_verification_mail(settings, mailer, user)


def verify_email(session: Session, settings: Settings, token: str) -> User:
    try:
        claims = tokens.decode(settings, token, TokenKind.VERIFY_EMAIL)
    except InvalidTokenError as exc:
        raise InvalidVerificationTokenError(
            f"verification link is invalid: {exc.message}", details=exc.details
        ) from exc
    user = users_service.get_user(session, claims["sub"])
    if user is None or claims.get("email") != user.email:
        raise InvalidVerificationTokenError("verification link does not match an account")
    if users_service.mark_verified(session, user) and settings.signup_credits:
        credits_service.grant(
            session,
            user.id,
            settings.signup_credits,
            kind=EntryKind.GRANT,
            reference="signup bonus",
            external_ref=f"signup:{user.id}",
        )
    return user


def login(session: Session, settings: Settings, email: str, password: str) -> TokenPair:
    try:
        user = users_service.get_user_by_email(session, email)
    except users_service.InvalidEmailError:
        user = None
    # Always one argon2 verification, so timing does not tell whether the account exists.
    if not passwords.verify_password(user.password_hash if user else None, password) or user is None:
        raise InvalidCredentialsError("wrong email or password")
    if not user.is_verified:
        raise EmailNotVerifiedError(
            "confirm your email address first: open the link we mailed you "
            "(POST /v1/auth/verify/resend sends a new one)"
        )
    if passwords.needs_rehash(user.password_hash):
        users_service.set_password_hash(session, user, password)
    return _issue_pair(session, settings, user, family_id=uuid.uuid4())


def refresh(session: Session, settings: Settings, refresh_token: str) -> TokenPair:
    claims = tokens.decode(settings, refresh_token, TokenKind.REFRESH)
    repository = RefreshTokenRepository(session)
    stored = repository.get_for_update(claims["jti"])
    if stored is None or stored.user_id != claims["sub"]:
        raise InvalidTokenError("unknown refresh token", details={"reason": "unknown"})
    if stored.revoked_at is not None:
        raise InvalidTokenError("refresh token revoked; log in again", details={"reason": "revoked"})
    now = utcnow()
    if stored.used_at is not None:
        repository.revoke_family(stored.family_id, now)
        raise RefreshTokenReusedError("refresh token was already used; every session of this login is revoked")
    user = UserRepository(session).get(stored.user_id)
    if user is None:
        raise InvalidTokenError("unknown refresh token", details={"reason": "unknown"})
    stored.used_at = now
    return _issue_pair(session, settings, user, family_id=stored.family_id)


def logout(session: Session, settings: Settings, refresh_token: str) -> None:
    """Revokes the token's family. Expired tokens are accepted: logging out must always be possible."""
    claims = tokens.decode(settings, refresh_token, TokenKind.REFRESH, verify_exp=False)
    repository = RefreshTokenRepository(session)
    stored = repository.get_for_update(claims["jti"])
    if stored is None or stored.user_id != claims["sub"]:
        raise InvalidTokenError("unknown refresh token", details={"reason": "unknown"})
    repository.revoke_family(stored.family_id, utcnow())


def authenticate_access_token(session: Session, settings: Settings, token: str) -> User:
    claims = tokens.decode(settings, token, TokenKind.ACCESS)
    user = UserRepository(session).get(claims["sub"])
    if user is None:
        raise InvalidTokenError("token subject does not exist", details={"reason": "unknown_subject"})
    return user


def _issue_pair(session: Session, settings: Settings, user: User, *, family_id: uuid.UUID) -> TokenPair:
    token_id = uuid.uuid4()
    RefreshTokenRepository(session).add(
        RefreshToken(
            id=token_id,
            user_id=user.id,
            family_id=family_id,
            expires_at=utcnow() + timedelta(seconds=settings.refresh_token_ttl_seconds),
        )
    )
    return TokenPair(
        access_token=tokens.issue(settings, TokenKind.ACCESS, user.id),
        refresh_token=tokens.issue(settings, TokenKind.REFRESH, user.id, jti=token_id, fam=str(family_id)),
        expires_in=settings.access_token_ttl_seconds,
    )

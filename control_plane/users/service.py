"""Users: creation, lookup, email normalisation. Services flush, never commit: the caller's scope does."""

from __future__ import annotations

import uuid

from email_validator import EmailNotValidError, validate_email
from sqlalchemy.orm import Session

from control_plane.db import utcnow
from control_plane.errors import ConflictError, InvalidRequestError, ResourceNotFoundError
from control_plane.users import passwords
from control_plane.users.models import User
from control_plane.users.repository import UserRepository


class InvalidEmailError(InvalidRequestError):
    code = "invalid_email"


class EmailTakenError(ConflictError):
    code = "email_taken"


class UserNotFoundError(ResourceNotFoundError):
    code = "user_not_found"


def normalize_email(email: str) -> str:
    """Syntax-checked (no DNS lookup), IDNA/Unicode-normalised and lower-cased.

    Lower-casing the local part is stricter than RFC 5321, but every mainstream provider treats it as
    case-insensitive, and two accounts differing only in case are a support problem, not a feature.
    """
    try:
        return validate_email(email, check_deliverability=False).normalized.lower()
    except EmailNotValidError as exc:
        raise InvalidEmailError(f"invalid email address: {exc}", details={"email": email}) from exc


def get_user(session: Session, user_id: uuid.UUID) -> User | None:
    return UserRepository(session).get(user_id)


def get_user_by_email(session: Session, email: str) -> User | None:
    return UserRepository(session).get_by_email(normalize_email(email))


def find_user(session: Session, *, user_id: uuid.UUID | None = None, email: str | None = None) -> User:
    """The user with this id or email; `UserNotFoundError` (404) otherwise."""
    user = get_user(session, user_id) if user_id is not None else None
    if user is None and email is not None:
        user = get_user_by_email(session, email)
    if user is None:
        raise UserNotFoundError("no such user", details={"user_id": str(user_id) if user_id else None, "email": email})
    return user


def create_user(session: Session, email: str, password: str, *, is_admin: bool = False, verified: bool = False) -> User:
    """A new user with an argon2id password hash; `EmailTakenError` (409) when the email exists."""
    email = normalize_email(email)
    passwords.check_password_strength(password, email)
    repository = UserRepository(session)
    if repository.get_by_email(email) is not None:
        raise EmailTakenError("an account with this email already exists", details={"email": email})
    user = User(
        email=email,
        password_hash=passwords.hash_password(password),
        is_admin=is_admin,
        email_verified_at=utcnow() if verified else None,
    )
    if not repository.add(user):
        raise EmailTakenError("an account with this email already exists", details={"email": email})
    return user


def create_admin(session: Session, email: str, password: str) -> User:
    """A verified admin; an existing account with this email is promoted instead (its password is kept)."""
    existing = UserRepository(session).get_by_email(normalize_email(email))
    if existing is None:
        return create_user(session, email, password, is_admin=True, verified=True)
    existing.is_admin = True
    if existing.email_verified_at is None:
        existing.email_verified_at = utcnow()
    session.flush()
    return existing


def mark_verified(session: Session, user: User) -> bool:
    """True when this call verified the address (False if it already was)."""
    if user.email_verified_at is not None:
        return False
    user.email_verified_at = utcnow()
    session.flush()
    return True


def set_password_hash(session: Session, user: User, password: str) -> None:
    user.password_hash = passwords.hash_password(password)
    session.flush()

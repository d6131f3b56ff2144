"""API keys: `oct_<prefix>_<secret>`, shown once, stored as the SHA-256 of the secret.

A fast hash is enough here (unlike passwords): the secret is 256 random bits, so there is no dictionary to try
and brute force is out of reach whatever the hash speed; a slow KDF would only add latency to every API call.
The prefix is public: it finds the row with an index and identifies the key in listings.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import uuid
from datetime import timedelta

from sqlalchemy.orm import Session

from control_plane.api_keys.models import ApiKey
from control_plane.api_keys.repository import ApiKeyRepository
from control_plane.db import utcnow
from control_plane.errors import ConflictError, NotAuthenticatedError, ResourceNotFoundError
from control_plane.pagination import PageParams
from control_plane.users.models import User

KEY_PREFIX = "oct_"
MAX_ACTIVE_KEYS = 100
# `last_used_at` is informative; writing it at most once a minute keeps reads from becoming writes.
LAST_USED_RESOLUTION = timedelta(minutes=1)
_PREFIX_RE = re.compile(r"^[0-9a-f]{12}$")


class ApiKeyNotFoundError(ResourceNotFoundError):
    code = "api_key_not_found"


class TooManyApiKeysError(ConflictError):
    code = "too_many_api_keys"


class InvalidApiKeyError(NotAuthenticatedError):
    code = "invalid_api_key"


def looks_like_api_key(token: str) -> bool:
    return token.startswith(KEY_PREFIX)


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create_key(session: Session, user: User, name: str) -> tuple[ApiKey, str]:
    """The stored key and its plaintext (`oct_<prefix>_<secret>`), which is never retrievable again."""
    repository = ApiKeyRepository(session)
    if repository.count_active(user.id) >= MAX_ACTIVE_KEYS:
        raise TooManyApiKeysError(f"at most {MAX_ACTIVE_KEYS} active API keys; delete one first")
    prefix = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    key = repository.add(ApiKey(user_id=user.id, name=name, prefix=prefix, secret_sha256=_digest(secret)))
    return key, f"{KEY_PREFIX}{prefix}_{secret}"


def list_keys(session: Session, user: User, params: PageParams) -> tuple[list[ApiKey], str | None]:
    return ApiKeyRepository(session).list_active(user.id, params)


def revoke_key(session: Session, user: User, key_id: uuid.UUID) -> None:
    """Revokes one of `user`'s keys; another user's key is 'not found', never 'forbidden' (no enumeration)."""
    key = ApiKeyRepository(session).get_active_for_user(user.id, key_id)
    if key is None:
        raise ApiKeyNotFoundError("no such API key", details={"api_key_id": str(key_id)})
    key.revoked_at = utcnow()
    session.flush()


def authenticate(session: Session, token: str) -> tuple[User, ApiKey]:
    """The owner of a valid, unrevoked key; `InvalidApiKeyError` (401) otherwise."""
    prefix, _, secret = token.removeprefix(KEY_PREFIX).partition("_")
    if not _PREFIX_RE.match(prefix) or not secret:
        raise InvalidApiKeyError("malformed API key")
    found = ApiKeyRepository(session).get_with_owner(prefix)
    if found is None or not hmac.compare_digest(found[0].secret_sha256, _digest(secret)):
        raise InvalidApiKeyError("invalid API key")
    key, user = found
    if key.revoked_at is not None:
        raise InvalidApiKeyError("API key revoked")
    now = utcnow()
    if key.last_used_at is None or now - key.last_used_at >= LAST_USED_RESOLUTION:
        key.last_used_at = now
        session.flush()
    return user, key

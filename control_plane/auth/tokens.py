"""JSON Web Tokens per RFC 8725 (JWT best current practices), with PyJWT.

- One algorithm, HS256, on an allow-list (§3.1): `alg: none` and algorithm substitution are refused by PyJWT.
- Explicit typing (§3.11): the `typ` header names the token kind (`at+jwt` for access tokens as in RFC 9068,
  `refresh+jwt`, `email-verify+jwt`), so a refresh or verification token is never accepted as an access token.
- `iss`, `aud`, `exp`, `iat`, `sub` and `jti` are required and checked (§3.8, §3.9).
"""

from __future__ import annotations

import enum
import uuid
from datetime import timedelta
from typing import Any

import jwt

from control_plane.config import Settings
from control_plane.db import utcnow
from control_plane.errors import NotAuthenticatedError

ALGORITHM = "HS256"
_REQUIRED_CLAIMS = ["iss", "aud", "exp", "iat", "sub", "jti"]


class TokenKind(enum.StrEnum):
    ACCESS = "at+jwt"
    REFRESH = "refresh+jwt"
    VERIFY_EMAIL = "email-verify+jwt"


class InvalidTokenError(NotAuthenticatedError):
    code = "invalid_token"


def _ttl(settings: Settings, kind: TokenKind) -> int:
    return {
        TokenKind.ACCESS: settings.access_token_ttl_seconds,
        TokenKind.REFRESH: settings.refresh_token_ttl_seconds,
        TokenKind.VERIFY_EMAIL: settings.verification_token_ttl_seconds,
    }[kind]


def issue(
    settings: Settings, kind: TokenKind, subject: uuid.UUID, *, jti: uuid.UUID | None = None, **claims: Any
) -> str:
    now = utcnow()
    payload = {
        "iss": settings.jwt_issuer,
        "aud": settings.jwt_audience,
        "sub": str(subject),
        "iat": now,
        "exp": now + timedelta(seconds=_ttl(settings, kind)),
        "jti": str(jti or uuid.uuid4()),
        **claims,
    }
    return jwt.encode(payload, settings.jwt_secret.get_secret_value(), algorithm=ALGORITHM, headers={"typ": str(kind)})


def decode(settings: Settings, token: str, kind: TokenKind, *, verify_exp: bool = True) -> dict[str, Any]:
    """The verified claims of a `kind` token; `InvalidTokenError` (401) for anything else."""
    try:
        decoded = jwt.decode_complete(
            token,
            settings.jwt_secret.get_secret_value(),
            algorithms=[ALGORITHM],
            audience=settings.jwt_audience,
            issuer=settings.jwt_issuer,
            options={"require": _REQUIRED_CLAIMS, "verify_exp": verify_exp},
        )
    except jwt.ExpiredSignatureError as exc:
        raise InvalidTokenError("token expired", details={"reason": "expired"}) from exc
    except jwt.PyJWTError as exc:
        raise InvalidTokenError("invalid token", details={"reason": type(exc).__name__}) from exc
    if decoded["header"].get("typ") != kind:
        raise InvalidTokenError(f"not a {kind.name.lower()} token", details={"reason": "wrong_type"})
    claims: dict[str, Any] = decoded["payload"]
    try:
        claims["sub"] = uuid.UUID(str(claims["sub"]))
        claims["jti"] = uuid.UUID(str(claims["jti"]))
    except ValueError as exc:
        raise InvalidTokenError("invalid token", details={"reason": "malformed_claims"}) from exc
    return claims

"""FastAPI dependencies as `Annotated` aliases (full-stack-fastapi-template `api/deps.py`).

`SessionDep` is the request's unit of work: it commits when the endpoint returns and rolls back when it raises,
before the response is sent (`scope="function"`), so a client never sees data that was not committed. Services
never commit themselves.

A database connection is only held while a thread-pool thread works with it, never while a request waits on
the event loop for its next hop: authentication commits its own small unit of work, and sync endpoints finish
their session (commit or rollback, then close) in their own thread (`control_plane.routing.UnitOfWorkRoute`).
Holding connections across hops made a burst of requests open more connections than the pool keeps, and
PostgreSQL forks a backend for each new one. With at most one connection per thread and no more threads than
pooled connections (app.py), nothing waits for a connection and nothing reconnects under load.
Dependencies that do no I/O are `async def`: FastAPI runs every sync dependency in the thread pool.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated

import anyio
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from control_plane.api_keys import service as api_keys_service
from control_plane.auth import service as auth_service
from control_plane.config import Settings
from control_plane.errors import ApiError, NotAuthenticatedError, PermissionDeniedError, RateLimitedError
from control_plane.mail import Mailer
from control_plane.ratelimit import RateLimiter, retry_after_seconds
from control_plane.users.models import User


async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


SettingsDep = Annotated[Settings, Depends(get_settings)]


_FINISHED = "octavia.finished"


def finish_session(session: Session, *, commit: bool) -> None:
    """Ends the request's unit of work: commit (or roll back), then return the connection to the pool."""
    try:
        if commit:
            session.commit()
        else:
            session.rollback()
    finally:
        session.close()
        session.info[_FINISHED] = True


def finish_session_after(session: Session, error: BaseException | None) -> None:
    """`finish_session` for an endpoint that returned (commit) or raised `error` (an `ApiError` may keep its
    changes, e.g. a failed login attempt that is counted)."""
    finish_session(session, commit=error is None or (isinstance(error, ApiError) and error.persist_changes))


async def _finish_in_thread(session: Session, error: BaseException | None) -> None:
    if session.info.get(_FINISHED):
        return  # the endpoint's thread did it
    # Shielded: a client that disconnects must not leave a transaction open or a connection checked out.
    with anyio.CancelScope(shield=True):
        await anyio.to_thread.run_sync(lambda: finish_session_after(session, error))


async def get_session(request: Request) -> AsyncIterator[Session]:
    session: Session = request.app.state.session_factory()
    try:
        yield session
    except BaseException as exc:
        await _finish_in_thread(session, exc)
        raise
    await _finish_in_thread(session, None)


SessionDep = Annotated[Session, Depends(get_session, scope="function")]


async def get_mailer(request: Request) -> Mailer:
    mailer: Mailer = request.app.state.mailer
    return mailer


MailerDep = Annotated[Mailer, Depends(get_mailer)]


def _limit(limiter: RateLimiter, key: str) -> None:
    wait = limiter.acquire(key)
    if wait > 0:
        raise RateLimitedError(retry_after_seconds(wait))


async def limit_by_client_ip(request: Request) -> None:
    """For unauthenticated endpoints (signup, login, ...): a budget per client address."""
    client = request.client.host if request.client else "unknown"
    _limit(request.app.state.auth_rate_limiter, f"ip:{client}")


bearer_scheme = HTTPBearer(
    auto_error=False,
    description="An access token from `POST /v1/auth/login`, or an API key (`oct_...`) from `POST /v1/api-keys`.",
)


@dataclass(frozen=True)
class Principal:
    """Who makes the request, and through which API key (None for an access token)."""

    user: User
    api_key_id: uuid.UUID | None


def get_principal(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
) -> Principal:
    if credentials is None:
        raise NotAuthenticatedError("send `Authorization: Bearer <access token or API key>`")
    token = credentials.credentials
    if api_keys_service.looks_like_api_key(token):
        user, key = api_keys_service.authenticate(session, token)
        principal = Principal(user=user, api_key_id=key.id)
    else:
        principal = Principal(user=auth_service.authenticate_access_token(session, settings, token), api_key_id=None)
    session.commit()  # its own unit of work (last_used_at): the connection goes back to the pool until the endpoint
    # Each API key has its own budget; access tokens share the user's.
    bucket = f"key:{principal.api_key_id}" if principal.api_key_id else f"user:{principal.user.id}"
    _limit(request.app.state.rate_limiter, bucket)
    return principal


PrincipalDep = Annotated[Principal, Depends(get_principal)]


async def get_current_user(principal: PrincipalDep) -> User:
    return principal.user


CurrentUser = Annotated[User, Depends(get_current_user)]


class AdminRequiredError(PermissionDeniedError):
    code = "admin_required"


async def get_admin_user(user: CurrentUser) -> User:
    if not user.is_admin:
        raise AdminRequiredError("this endpoint is for administrators")
    return user


AdminUser = Annotated[User, Depends(get_admin_user)]

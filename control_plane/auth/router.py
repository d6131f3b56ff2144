from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, status

from control_plane.auth import service
from control_plane.auth.schemas import (
    AcceptedRead,
    LoginRequest,
    RefreshRequest,
    ResendVerificationRequest,
    SignupRequest,
    TokenPairRead,
)
from control_plane.deps import MailerDep, SessionDep, SettingsDep, limit_by_client_ip
from control_plane.routing import UnitOfWorkRoute
from control_plane.users.schemas import UserRead

router = APIRouter(
    route_class=UnitOfWorkRoute, prefix="/auth", tags=["auth"], dependencies=[Depends(limit_by_client_ip)]
)


@router.post("/signup", status_code=status.HTTP_201_CREATED, response_model=UserRead)
def signup(body: SignupRequest, session: SessionDep, settings: SettingsDep, mailer: MailerDep) -> UserRead:
    """Creates an unverified account and mails a verification link."""
    user = service.signup(session, settings, mailer, body.email, body.password)
    return UserRead.model_validate(user)


@router.get("/verify", response_model=UserRead)
def verify(
    token: Annotated[str, Query(min_length=1, max_length=4096)], session: SessionDep, settings: SettingsDep
) -> UserRead:
    """The link in the verification mail. Idempotent."""
    return UserRead.model_validate(service.verify_email(session, settings, token))


@router.post("/verify/resend", status_code=status.HTTP_202_ACCEPTED, response_model=AcceptedRead)
def resend_verification(
    body: ResendVerificationRequest, session: SessionDep, settings: SettingsDep, mailer: MailerDep
) -> AcceptedRead:
    """Mails a new link if the account exists and is unverified; the answer is the same either way."""
    service.resend_verification(session, settings, mailer, body.email)
    return AcceptedRead()


@router.post("/login", response_model=TokenPairRead)
def login(body: LoginRequest, session: SessionDep, settings: SettingsDep) -> TokenPairRead:
    pair = service.login(session, settings, body.email, body.password)
    return TokenPairRead(access_token=pair.access_token, refresh_token=pair.refresh_token, expires_in=pair.expires_in)


@router.post("/refresh", response_model=TokenPairRead)
def refresh(body: RefreshRequest, session: SessionDep, settings: SettingsDep) -> TokenPairRead:
    """Rotates the refresh token. Presenting an already used one revokes the whole login."""
    pair = service.refresh(session, settings, body.refresh_token)
    return TokenPairRead(access_token=pair.access_token, refresh_token=pair.refresh_token, expires_in=pair.expires_in)


@router.post("/logout", status_code=status.HTTP_204_NO_CONTENT)
def logout(body: RefreshRequest, session: SessionDep, settings: SettingsDep) -> None:
    service.logout(session, settings, body.refresh_token)

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, EmailStr, Field

from control_plane.users.passwords import MAX_LENGTH


class SignupRequest(BaseModel):
    email: EmailStr = Field(max_length=320)
    # Strength is checked by the service (same policy for the CLI); the bound here only caps hashing work.
    password: str = Field(min_length=1, max_length=MAX_LENGTH * 4)


class LoginRequest(BaseModel):
    email: str = Field(min_length=1, max_length=320)
    password: str = Field(min_length=1, max_length=MAX_LENGTH * 4)


class RefreshRequest(BaseModel):
    refresh_token: str = Field(min_length=1, max_length=4096)


class ResendVerificationRequest(BaseModel):
    email: str = Field(min_length=1, max_length=320)


class TokenPairRead(BaseModel):
    access_token: str
    refresh_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int = Field(description="access token lifetime in seconds")


class AcceptedRead(BaseModel):
    status: Literal["accepted"] = "accepted"

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, field_validator

from control_plane.api_keys.service import KEY_PREFIX


class ApiKeyCreate(BaseModel):
    name: str = Field(min_length=1, max_length=100)

    @field_validator("name")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("name must not be blank")
        return value.strip()


class ApiKeyRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    prefix: str = Field(description="identifies the key: its first characters, `oct_<prefix>`")
    created_at: datetime
    last_used_at: datetime | None

    @field_validator("prefix")
    @classmethod
    def _displayed(cls, value: str) -> str:
        return value if value.startswith(KEY_PREFIX) else f"{KEY_PREFIX}{value}"


class ApiKeyCreated(ApiKeyRead):
    key: str = Field(description="the full key; shown only once, store it now")

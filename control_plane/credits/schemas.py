from __future__ import annotations

import uuid
from datetime import datetime
from typing import Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from control_plane.credits.models import EntryKind

MAX_DURATION_SECONDS = 24 * 3600
MAX_TARGET_LANGUAGES = 20
MAX_GRANT = 10**9


class BalanceRead(BaseModel):
    balance: int = Field(description="credits owned, including the reserved ones")
    reserved: int = Field(description="credits held for running jobs")
    available: int = Field(description="balance - reserved: what new jobs can use")


class LedgerEntryRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    kind: EntryKind
    amount: int = Field(description="change of the balance")
    reserved_delta: int = Field(description="change of the reserved credits")
    reservation_id: uuid.UUID | None
    reference: str | None
    created_at: datetime


class EstimateRequest(BaseModel):
    duration_seconds: float = Field(gt=0, le=MAX_DURATION_SECONDS, allow_inf_nan=False)
    target_languages: list[str] = Field(min_length=1, max_length=MAX_TARGET_LANGUAGES)


class EstimateRead(BaseModel):
    credits: int
    started_minutes: int
    target_languages: list[str] = Field(description="normalised ISO 639-1 codes, deduplicated")
    credits_per_minute: int = Field(description="price per started minute and target language")
    available: int
    sufficient: bool


class AdminGrantRequest(BaseModel):
    user_id: uuid.UUID | None = None
    email: str | None = Field(default=None, max_length=320)
    amount: int = Field(gt=0, le=MAX_GRANT)
    reason: str = Field(min_length=1, max_length=500)

    @model_validator(mode="after")
    def _one_target(self) -> Self:
        if (self.user_id is None) == (self.email is None):
            raise ValueError("give exactly one of user_id or email")
        return self


class AdminGrantRead(BaseModel):
    user_id: uuid.UUID
    entry: LedgerEntryRead
    balance: BalanceRead

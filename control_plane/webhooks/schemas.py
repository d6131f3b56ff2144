from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, field_validator

from control_plane.webhooks.models import DeliveryStatus, EventType


class WebhookEndpointCreate(BaseModel):
    url: str = Field(min_length=1, max_length=2048, description="http(s) URL that receives the POSTs")
    event_types: list[EventType] = Field(
        default_factory=lambda: list(EventType), min_length=1, max_length=len(EventType), description="default: all"
    )
    description: str | None = Field(default=None, max_length=200)

    @field_validator("url")
    @classmethod
    def _strip(cls, value: str) -> str:
        return value.strip()


class WebhookEndpointRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    url: str
    description: str | None
    event_types: list[str]
    created_at: datetime


class WebhookEndpointCreated(WebhookEndpointRead):
    secret: str = Field(
        description="`whsec_...` signing secret (Standard Webhooks); shown only once: verify deliveries with it"
    )


class WebhookDeliveryRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    event_id: uuid.UUID
    event_type: str
    status: DeliveryStatus = Field(description="pending (will be attempted), succeeded or failed (gave up)")
    attempts: int
    last_status_code: int | None = Field(description="HTTP status of the last attempt (None: no answer)")
    last_error: str | None
    last_attempt_at: datetime | None
    next_attempt_at: datetime | None
    created_at: datetime
    completed_at: datetime | None

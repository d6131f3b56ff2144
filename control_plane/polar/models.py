from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Enum, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from control_plane.db import Base, utcnow


class DeliveryOutcome(enum.StrEnum):
    CREDITED = "credited"
    ALREADY_CREDITED = "already_credited"  # same order seen under another webhook id (order.created + order.paid)
    IGNORED = "ignored"  # an event type or order state that grants nothing
    UNKNOWN_PRODUCT = "unknown_product"
    UNKNOWN_USER = "unknown_user"


class PolarWebhookEvent(Base):
    """Every verified Polar delivery, keyed by its `webhook-id`: the idempotency record and the audit trail."""

    __tablename__ = "polar_webhook_events"

    webhook_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    event_type: Mapped[str] = mapped_column(String(100))
    outcome: Mapped[DeliveryOutcome] = mapped_column(
        Enum(DeliveryOutcome, native_enum=False, length=32, values_callable=lambda e: [m.value for m in e])
    )
    detail: Mapped[str | None] = mapped_column(String(500), default=None)
    user_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), default=None)
    credits: Mapped[int] = mapped_column(Integer, default=0)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    received_at: Mapped[datetime] = mapped_column(default=utcnow)

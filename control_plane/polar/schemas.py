from __future__ import annotations

from pydantic import BaseModel, Field


class WebhookAck(BaseModel):
    outcome: str = Field(
        description="credited | already_credited | duplicate | ignored | unknown_product | unknown_user"
    )
    credits: int = Field(description="credits granted by this delivery")

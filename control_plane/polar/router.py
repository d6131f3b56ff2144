from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request

from control_plane.deps import SessionDep, SettingsDep
from control_plane.polar import service
from control_plane.polar.schemas import WebhookAck
from control_plane.routing import UnitOfWorkRoute

router = APIRouter(route_class=UnitOfWorkRoute, prefix="/webhooks", tags=["webhooks"])


async def raw_body(request: Request) -> bytes:
    # The signature covers the exact bytes, so the body is read raw, never re-serialised.
    return await request.body()


@router.post(
    "/polar",
    response_model=WebhookAck,
    openapi_extra={
        "requestBody": {"required": True, "content": {"application/json": {"schema": {"type": "object"}}}},
    },
)
def polar_webhook(
    request: Request, body: Annotated[bytes, Depends(raw_body)], session: SessionDep, settings: SettingsDep
) -> WebhookAck:
    """Polar order events (Standard Webhooks signature). Paid orders of configured products credit the buyer."""
    result = service.handle_webhook(session, settings, body, request.headers)
    return WebhookAck(outcome=result.outcome, credits=result.credits)

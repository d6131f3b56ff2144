from __future__ import annotations

import uuid

from fastapi import APIRouter, status

from control_plane.deps import CurrentUser, SessionDep, SettingsDep
from control_plane.pagination import Page, PageParamsDep
from control_plane.routing import UnitOfWorkRoute
from control_plane.webhooks import service
from control_plane.webhooks.schemas import (
    WebhookDeliveryRead,
    WebhookEndpointCreate,
    WebhookEndpointCreated,
    WebhookEndpointRead,
)

router = APIRouter(route_class=UnitOfWorkRoute, prefix="/webhook-endpoints", tags=["webhooks"])


@router.post("", status_code=status.HTTP_201_CREATED, response_model=WebhookEndpointCreated)
def create_endpoint(
    body: WebhookEndpointCreate, user: CurrentUser, session: SessionDep, settings: SettingsDep
) -> WebhookEndpointCreated:
    """Registers a URL for `job.succeeded`, `job.failed` and/or `job.canceled` events. Deliveries carry Standard
    Webhooks headers signed with the returned secret, which is shown only this once."""
    endpoint = service.create_endpoint(session, settings, user.id, body.url, body.event_types, body.description)
    return WebhookEndpointCreated.model_validate(
        {**WebhookEndpointRead.model_validate(endpoint).model_dump(), "secret": endpoint.secret}
    )


@router.get("", response_model=Page[WebhookEndpointRead])
def list_endpoints(user: CurrentUser, session: SessionDep, page: PageParamsDep) -> Page[WebhookEndpointRead]:
    """Your webhook endpoints, newest first."""
    endpoints, next_cursor = service.list_endpoints(session, user.id, page)
    return Page[WebhookEndpointRead](
        items=[WebhookEndpointRead.model_validate(e) for e in endpoints], next_cursor=next_cursor
    )


@router.get("/{endpoint_id}", response_model=WebhookEndpointRead)
def read_endpoint(endpoint_id: uuid.UUID, user: CurrentUser, session: SessionDep) -> WebhookEndpointRead:
    return WebhookEndpointRead.model_validate(service.get_endpoint(session, user.id, endpoint_id))


@router.delete("/{endpoint_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_endpoint(endpoint_id: uuid.UUID, user: CurrentUser, session: SessionDep) -> None:
    """Deletes the endpoint; its pending deliveries are dropped."""
    service.delete_endpoint(session, user.id, endpoint_id)


@router.get("/{endpoint_id}/deliveries", response_model=Page[WebhookDeliveryRead])
def list_deliveries(
    endpoint_id: uuid.UUID, user: CurrentUser, session: SessionDep, page: PageParamsDep
) -> Page[WebhookDeliveryRead]:
    """The endpoint's delivery log, newest first: attempts, last HTTP status, next attempt, outcome."""
    deliveries, next_cursor = service.list_deliveries(session, user.id, endpoint_id, page)
    return Page[WebhookDeliveryRead](
        items=[WebhookDeliveryRead.model_validate(d) for d in deliveries], next_cursor=next_cursor
    )

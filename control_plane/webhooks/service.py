"""Webhook endpoints (create, list, delete, delivery log) and `emit_event`, which queues deliveries in the caller's
transaction; `delivery.deliver_due` sends them.

- Secrets are `whsec_` + base64 of 32 random bytes, the Standard Webhooks format its libraries accept as is. Shown
  once, at creation; they are stored in clear because every delivery is signed with them.
- URLs: http or https, no credentials, no fragment. In production an endpoint whose host is (or resolves to) a
  private, loopback, link-local or otherwise non-global address is refused unless
  OCTAVIA_WEBHOOK_ALLOW_PRIVATE_ADDRESSES is true: the server would otherwise probe its own network for a caller.
  The check is repeated before each delivery (DNS can change after creation).
"""

from __future__ import annotations

import base64
import ipaddress
import json
import secrets
import socket
import uuid
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy.orm import Session

from control_plane.config import Settings
from control_plane.db import utcnow
from control_plane.errors import ConflictError, InvalidRequestError, ResourceNotFoundError
from control_plane.pagination import PageParams
from control_plane.webhooks.models import (
    DeliveryStatus,
    EventType,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEvent,
)
from control_plane.webhooks.repository import WebhookRepository

MAX_ENDPOINTS = 20
SECRET_PREFIX = "whsec_"
_SECRET_BYTES = 32


class WebhookEndpointNotFoundError(ResourceNotFoundError):
    code = "webhook_endpoint_not_found"


class TooManyWebhookEndpointsError(ConflictError):
    code = "too_many_webhook_endpoints"


class InvalidWebhookUrlError(InvalidRequestError):
    code = "invalid_webhook_url"


class WebhookUrlNotAllowedError(InvalidRequestError):
    code = "webhook_url_not_allowed"


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(_SECRET_BYTES)).decode()


def _resolve(host: str, port: int) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    try:
        literal = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        pass
    else:
        return [literal]
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]


def check_destination(url: str, settings: Settings) -> None:
    """Refuses (WebhookUrlNotAllowedError) a URL whose host is not a public address, in production only."""
    if settings.environment != "production" or settings.webhook_allow_private_addresses:
        return
    parts = urlsplit(url)
    host = parts.hostname or ""
    try:
        addresses = _resolve(host, parts.port or (443 if parts.scheme == "https" else 80))
    except (OSError, UnicodeError) as exc:
        raise WebhookUrlNotAllowedError(f"cannot resolve {host!r}", details={"host": host}) from exc
    blocked = sorted({str(address) for address in addresses if not address.is_global})
    if blocked or not addresses:
        raise WebhookUrlNotAllowedError(
            "webhook URLs must point to public addresses",
            details={"host": host, "addresses": blocked},
        )


def validate_url(url: str, settings: Settings) -> str:
    try:
        parts = urlsplit(url)
        port = parts.port  # raises on a bad port
    except ValueError as exc:
        raise InvalidWebhookUrlError(f"not a valid URL: {exc}") from exc
    if parts.scheme not in ("http", "https"):
        raise InvalidWebhookUrlError("webhook URLs must be http or https", details={"scheme": parts.scheme[:20]})
    if not parts.hostname:
        raise InvalidWebhookUrlError("the webhook URL has no host")
    if parts.username is not None or parts.password is not None:
        raise InvalidWebhookUrlError("put no credentials in the webhook URL; verify our signature instead")
    if parts.fragment:
        raise InvalidWebhookUrlError("the webhook URL must not have a fragment")
    if port == 0:
        raise InvalidWebhookUrlError("port 0 is not a destination")
    check_destination(url, settings)
    return url


def create_endpoint(
    session: Session,
    settings: Settings,
    user_id: uuid.UUID,
    url: str,
    event_types: list[EventType],
    description: str | None = None,
) -> WebhookEndpoint:
    repository = WebhookRepository(session)
    if repository.count_endpoints(user_id) >= MAX_ENDPOINTS:
        raise TooManyWebhookEndpointsError(f"at most {MAX_ENDPOINTS} webhook endpoints; delete one first")
    endpoint = WebhookEndpoint(
        user_id=user_id,
        url=validate_url(url, settings),
        description=description,
        event_types=[str(t) for t in dict.fromkeys(event_types)],
        secret=new_secret(),
    )
    repository.add(endpoint)
    return endpoint


def get_endpoint(session: Session, user_id: uuid.UUID, endpoint_id: uuid.UUID) -> WebhookEndpoint:
    """One of the user's endpoints; another user's is 'not found' (no enumeration)."""
    endpoint = WebhookRepository(session).get_endpoint(user_id, endpoint_id)
    if endpoint is None:
        raise WebhookEndpointNotFoundError("no such webhook endpoint", details={"endpoint_id": str(endpoint_id)})
    return endpoint


def list_endpoints(
    session: Session, user_id: uuid.UUID, params: PageParams
) -> tuple[list[WebhookEndpoint], str | None]:
    return WebhookRepository(session).list_endpoints(user_id, params)


def delete_endpoint(session: Session, user_id: uuid.UUID, endpoint_id: uuid.UUID) -> None:
    """Deletes the endpoint and its deliveries (pending ones are never sent)."""
    WebhookRepository(session).delete_endpoint(get_endpoint(session, user_id, endpoint_id))


def list_deliveries(
    session: Session, user_id: uuid.UUID, endpoint_id: uuid.UUID, params: PageParams
) -> tuple[list[WebhookDelivery], str | None]:
    endpoint = get_endpoint(session, user_id, endpoint_id)
    return WebhookRepository(session).list_deliveries(endpoint.id, params)


def emit_event(
    session: Session, user_id: uuid.UUID, event_type: str, data: dict[str, Any], *, now: datetime | None = None
) -> None:
    """Records `event_type` with `data` for `user_id` and queues one delivery per endpoint subscribed to it, due at
    once, in the caller's transaction (so an event is sent only if what it announces was committed)."""
    try:
        kind = EventType(event_type)
    except ValueError:
        known = ", ".join(t.value for t in EventType)
        raise ValueError(f"unknown webhook event type {event_type!r}; known: {known}") from None
    now = now or utcnow()
    payload = {"type": kind.value, "timestamp": now.isoformat().replace("+00:00", "Z"), "data": data}
    try:
        json.dumps(payload)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"webhook data must be JSON-serialisable: {exc}") from exc
    repository = WebhookRepository(session)
    event = WebhookEvent(id=uuid.uuid4(), user_id=user_id, type=kind.value, payload=payload, created_at=now)
    repository.add(event)
    for endpoint in repository.all_endpoints(user_id):
        if kind.value in endpoint.event_types:
            repository.add(
                WebhookDelivery(
                    event_id=event.id,
                    endpoint_id=endpoint.id,
                    event_type=kind.value,
                    status=DeliveryStatus.PENDING,
                    attempts=0,
                    next_attempt_at=now,
                    created_at=now,
                )
            )

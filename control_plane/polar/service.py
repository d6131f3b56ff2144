"""Polar (Merchant of Record) purchases → credits, from Polar's Standard Webhooks deliveries.

Decisions:
- Verification uses the `standardwebhooks` library the way Polar's SDK does (`validate_event`): the secret from the
  Polar dashboard is used as raw bytes (base64-encoded for the library). Bad or missing signature headers → 401.
- Idempotent on `webhook-id`: each verified delivery is recorded once; a redelivery returns 200 "duplicate".
- Only paid orders credit (`order.paid`, or `order.created`/`order.updated` whose status is "paid"), once per order
  id (a ledger `external_ref`), so an order announced by two events is credited once. Checkout events are recorded
  and ignored: a successful checkout produces an order, and crediting both would credit twice.
- The buyer is found by `data.metadata.user_id` (set it when creating the checkout), then the Polar customer's
  `external_id`, then the customer email. Credits = OCTAVIA_POLAR_PRODUCTS[product id] x `data.quantity` (1 if
  absent).
- An unknown product or buyer is recorded (outcome unknown_product / unknown_user, the payload kept for an admin to
  grant by hand) and answered 200: a retry cannot fix it, and Polar would otherwise retry for days.
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from control_plane.config import Settings
from control_plane.credits import service as credits_service
from control_plane.credits.models import EntryKind
from control_plane.errors import ApiError, InvalidRequestError, ServiceUnavailableError
from control_plane.polar.models import DeliveryOutcome, PolarWebhookEvent
from control_plane.polar.repository import PolarWebhookEventRepository
from control_plane.users import service as users_service
from control_plane.users.models import User

DUPLICATE = "duplicate"
ORDER_EVENTS = frozenset({"order.created", "order.updated", "order.paid"})
MAX_QUANTITY = 1_000_000


class InvalidWebhookSignatureError(ApiError):
    status_code = 401
    code = "invalid_webhook_signature"


class InvalidWebhookPayloadError(InvalidRequestError):
    status_code = 400
    code = "invalid_webhook_payload"


class PolarDisabledError(ServiceUnavailableError):
    code = "polar_disabled"


@dataclass(frozen=True)
class WebhookResult:
    outcome: str
    credits: int = 0


@dataclass(frozen=True)
class _Decision:
    outcome: DeliveryOutcome
    detail: str
    credits: int = 0
    user: User | None = None


def verify(settings: Settings, body: bytes, headers: Mapping[str, str]) -> dict[str, Any]:
    """The JSON payload of a delivery signed with OCTAVIA_POLAR_WEBHOOK_SECRET; raises otherwise."""
    if settings.polar_webhook_secret is None or not settings.polar_enabled:
        raise PolarDisabledError("Polar webhooks are not configured (set OCTAVIA_POLAR_WEBHOOK_SECRET)")
    secret = settings.polar_webhook_secret.get_secret_value()
    webhook = Webhook(base64.b64encode(secret.encode()).decode())
    try:
        webhook.verify(body, {name.lower(): value for name, value in headers.items()}, json_parse=False)
    except (WebhookVerificationError, ValueError, binascii.Error) as exc:
        # ValueError covers malformed signature lists and non-UTF-8 bodies, which the library does not wrap.
        raise InvalidWebhookSignatureError(f"webhook signature verification failed: {exc}") from exc
    try:
        payload = json.loads(body)
    except ValueError as exc:
        raise InvalidWebhookPayloadError("webhook body is not JSON") from exc
    if not isinstance(payload, dict):
        raise InvalidWebhookPayloadError("webhook body is not a JSON object")
    return payload


def handle_webhook(session: Session, settings: Settings, body: bytes, headers: Mapping[str, str]) -> WebhookResult:
    headers = {name.lower(): value for name, value in headers.items()}
    payload = verify(settings, body, headers)
    webhook_id = headers["webhook-id"]  # present: verification needs it
    if len(webhook_id) > 255:
        raise InvalidWebhookPayloadError("webhook-id longer than 255 characters")
    repository = PolarWebhookEventRepository(session)
    if repository.get(webhook_id) is not None:
        return WebhookResult(DUPLICATE)
    event_type = str(payload.get("type") or "")[:100]
    event = PolarWebhookEvent(
        webhook_id=webhook_id, event_type=event_type, outcome=DeliveryOutcome.IGNORED, payload=payload
    )
    if not repository.add_if_new(event):
        return WebhookResult(DUPLICATE)
    decision = _decide(session, settings, event_type, payload.get("data"))
    event.outcome = decision.outcome
    event.detail = decision.detail[:500]
    event.credits = decision.credits
    event.user_id = decision.user.id if decision.user else None
    session.flush()
    return WebhookResult(decision.outcome.value, decision.credits)


def _decide(session: Session, settings: Settings, event_type: str, data: Any) -> _Decision:
    ignored = DeliveryOutcome.IGNORED
    if event_type.startswith("checkout."):
        return _Decision(ignored, "checkouts are credited through their order (order.paid)")
    if event_type not in ORDER_EVENTS:
        return _Decision(ignored, f"event type {event_type!r} grants no credits")
    if not isinstance(data, dict):
        return _Decision(ignored, "no data object")
    if event_type != "order.paid" and data.get("status") != "paid":
        return _Decision(ignored, f"order status {data.get('status')!r} is not paid")
    order_id = data.get("id")
    if not isinstance(order_id, str) or not order_id:
        return _Decision(ignored, "order without id")
    product = data.get("product")
    product_id = data.get("product_id") or (product.get("id") if isinstance(product, dict) else None)
    credits_per_unit = settings.polar_products.get(str(product_id))
    if credits_per_unit is None:
        return _Decision(DeliveryOutcome.UNKNOWN_PRODUCT, f"product {product_id!r} is not in OCTAVIA_POLAR_PRODUCTS")
    quantity = data.get("quantity", 1)
    if isinstance(quantity, bool) or not isinstance(quantity, int) or not 1 <= quantity <= MAX_QUANTITY:
        return _Decision(ignored, f"invalid quantity {quantity!r}")
    user = _find_buyer(session, data)
    if user is None:
        return _Decision(DeliveryOutcome.UNKNOWN_USER, f"order {order_id}: no user matches its metadata or customer")
    credits = credits_per_unit * quantity
    entry = credits_service.grant(
        session,
        user.id,
        credits,
        kind=EntryKind.PURCHASE,
        reference=f"Polar order {order_id}",
        external_ref=f"polar:order:{order_id}",
    )
    if entry is None:
        return _Decision(DeliveryOutcome.ALREADY_CREDITED, f"order {order_id} was already credited", user=user)
    return _Decision(DeliveryOutcome.CREDITED, f"order {order_id}", credits=credits, user=user)


def _find_buyer(session: Session, data: dict[str, Any]) -> User | None:
    metadata = data.get("metadata")
    metadata = metadata if isinstance(metadata, dict) else {}
    customer = data.get("customer")
    customer = customer if isinstance(customer, dict) else {}
    for candidate in (metadata.get("user_id"), customer.get("external_id")):
        user_id = _as_uuid(candidate)
        user = users_service.get_user(session, user_id) if user_id else None
        if user is not None:
            return user
    email = customer.get("email") or data.get("customer_email")
    if isinstance(email, str):
        try:
            return users_service.get_user_by_email(session, email)
        except users_service.InvalidEmailError:
            return None
    return None


def _as_uuid(value: Any) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value)) if value else None
    except ValueError:
        return None

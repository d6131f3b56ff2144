from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session
from standardwebhooks.webhooks import Webhook

from control_plane.credits import service as credits_service
from control_plane.polar.models import DeliveryOutcome, PolarWebhookEvent
from tests.control_plane.conftest import POLAR_SECRET, TestUser, assert_error, make_settings

# Polar's SDK base64-encodes the dashboard secret before handing it to standardwebhooks; so does a real sender.
SENDER = Webhook(base64.b64encode(POLAR_SECRET.encode()).decode())


def _order(user: TestUser | None = None, **overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": f"ord_{uuid.uuid4().hex[:10]}",
        "status": "paid",
        "product_id": "prod_small",
        "metadata": {"user_id": str(user.id)} if user else {},
        "customer": {"email": "buyer@example.com", "external_id": None},
    }
    data.update(overrides)
    return {"type": "order.paid", "timestamp": datetime.now(UTC).isoformat(), "data": data}


def _deliver(
    client: TestClient,
    payload: dict[str, Any] | bytes,
    *,
    webhook_id: str | None = None,
    timestamp: datetime | None = None,
    tamper: bool = False,
    signer: Webhook = SENDER,
) -> Any:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    webhook_id = webhook_id or f"msg_{uuid.uuid4().hex}"
    timestamp = timestamp or datetime.now(UTC)
    signature = signer.sign(webhook_id, timestamp, body.decode())
    if tamper:
        body = body.replace(b"prod_small", b"prod_large")
    headers = {
        "webhook-id": webhook_id,
        "webhook-timestamp": str(int(timestamp.timestamp())),
        "webhook-signature": signature,
        "content-type": "application/json",
    }
    return client.post("/v1/webhooks/polar", content=body, headers=headers)


def _balance(session: Session, user: TestUser) -> int:
    return credits_service.get_balance(session, user.id).balance


def test_a_paid_order_credits_the_user_in_metadata(
    client: TestClient, session: Session, make_user: Callable[..., TestUser]
) -> None:
    user = make_user()
    response = _deliver(client, _order(user), webhook_id="msg_1")
    assert response.status_code == 200, response.text
    assert response.json() == {"outcome": "credited", "credits": 100}
    assert _balance(session, user) == 100
    event = session.get(PolarWebhookEvent, "msg_1")
    assert event is not None and event.outcome is DeliveryOutcome.CREDITED and event.user_id == user.id
    ledger = client.get("/v1/credits/ledger", headers=user.headers).json()["items"]
    assert [(e["kind"], e["amount"]) for e in ledger] == [("purchase", 100)]


def test_a_replayed_delivery_credits_nothing(
    client: TestClient, session: Session, make_user: Callable[..., TestUser]
) -> None:
    user = make_user()
    payload = _order(user)
    assert _deliver(client, payload, webhook_id="msg_replay").json()["outcome"] == "credited"
    again = _deliver(client, payload, webhook_id="msg_replay")
    assert again.status_code == 200 and again.json() == {"outcome": "duplicate", "credits": 0}
    assert _balance(session, user) == 100


def test_the_same_order_under_two_events_is_credited_once(
    client: TestClient, session: Session, make_user: Callable[..., TestUser]
) -> None:
    user = make_user()
    paid = _order(user)
    created = {**paid, "type": "order.created"}
    assert _deliver(client, created).json() == {"outcome": "credited", "credits": 100}
    assert _deliver(client, paid).json() == {"outcome": "already_credited", "credits": 0}
    assert _balance(session, user) == 100


def test_quantity_and_product_object_are_respected(
    client: TestClient, session: Session, make_user: Callable[..., TestUser]
) -> None:
    user = make_user()
    payload = _order(user, product_id=None, product={"id": "prod_large"}, quantity=3)
    assert _deliver(client, payload).json() == {"outcome": "credited", "credits": 3000}
    assert _balance(session, user) == 3000


def test_buyer_found_by_external_id_then_email(
    client: TestClient, session: Session, make_user: Callable[..., TestUser]
) -> None:
    by_external, by_email = make_user(), make_user("Buyer@Example.com")
    external = _order(None, customer={"email": "other@example.com", "external_id": str(by_external.id)})
    assert _deliver(client, external).json()["outcome"] == "credited"
    assert _deliver(client, _order(None, metadata={"user_id": "not-a-uuid"})).json()["outcome"] == "credited"
    assert (_balance(session, by_external), _balance(session, by_email)) == (100, 100)


@pytest.mark.parametrize(
    ("overrides", "event_type", "outcome"),
    [
        ({"product_id": "prod_unknown"}, "order.paid", "unknown_product"),
        ({"metadata": {}, "customer": {"email": "nobody@example.com"}}, "order.paid", "unknown_user"),
        ({"status": "pending"}, "order.created", "ignored"),
        ({"status": "succeeded"}, "checkout.updated", "ignored"),
        ({}, "subscription.created", "ignored"),
        ({"quantity": 0}, "order.paid", "ignored"),
        ({"quantity": "two"}, "order.paid", "ignored"),
        ({"id": None}, "order.paid", "ignored"),
    ],
)
def test_deliveries_that_grant_nothing_are_recorded_and_acknowledged(
    client: TestClient,
    session: Session,
    make_user: Callable[..., TestUser],
    overrides: dict[str, Any],
    event_type: str,
    outcome: str,
) -> None:
    user = make_user()
    payload = {**_order(user, **overrides), "type": event_type}
    response = _deliver(client, payload, webhook_id="msg_nothing")
    assert response.status_code == 200, response.text
    assert response.json() == {"outcome": outcome, "credits": 0}
    assert _balance(session, user) == 0
    event = session.get(PolarWebhookEvent, "msg_nothing")
    assert event is not None and event.outcome == outcome and event.payload == payload and event.detail


def test_unsigned_tampered_or_stale_deliveries_are_refused(
    client: TestClient, session: Session, make_user: Callable[..., TestUser]
) -> None:
    user = make_user()
    payload = _order(user)
    assert_error(_deliver(client, payload, tamper=True), 401, "invalid_webhook_signature")
    stale = datetime.now(UTC) - timedelta(minutes=10)
    assert_error(_deliver(client, payload, timestamp=stale), 401, "invalid_webhook_signature")
    other_secret = Webhook(base64.b64encode(b"some other secret").decode())
    assert_error(_deliver(client, payload, signer=other_secret), 401, "invalid_webhook_signature")
    body = json.dumps(payload).encode()
    assert_error(client.post("/v1/webhooks/polar", content=body), 401, "invalid_webhook_signature")
    garbage_headers = {"webhook-id": "x", "webhook-timestamp": "soon", "webhook-signature": "garbage"}
    assert_error(client.post("/v1/webhooks/polar", content=body, headers=garbage_headers), 401)
    no_comma = {**garbage_headers, "webhook-timestamp": str(int(datetime.now(UTC).timestamp()))}
    assert_error(client.post("/v1/webhooks/polar", content=body, headers=no_comma), 401)
    assert_error(client.post("/v1/webhooks/polar", content=b"\xff\xfe", headers=no_comma), 401)
    assert _balance(session, user) == 0


def test_a_signed_body_that_is_not_a_json_object_is_400(client: TestClient) -> None:
    assert_error(_deliver(client, b"not json"), 400, "invalid_webhook_payload")
    assert_error(_deliver(client, b"[1, 2]"), 400, "invalid_webhook_payload")
    assert_error(_deliver(client, _order(), webhook_id="m" * 300), 400, "invalid_webhook_payload")


def test_webhooks_are_refused_when_polar_is_not_configured(
    session_factory: Any, make_user: Callable[..., TestUser]
) -> None:
    from control_plane.app import create_app

    app = create_app(make_settings(polar_webhook_secret=None), session_factory=session_factory, mailer=object())  # type: ignore[arg-type]
    with TestClient(app) as client:
        assert_error(_deliver(client, _order(make_user())), 503, "polar_disabled")

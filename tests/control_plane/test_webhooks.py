"""Outbound webhooks: endpoint CRUD and isolation, `emit_event` + `deliver_due` to a real receiver on loopback that
verifies Standard Webhooks signatures, retries with exponential backoff (time driven through `now`), and the
production refusal of private destinations."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import httpx2
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from control_plane.config import Settings
from control_plane.db import utcnow
from control_plane.webhooks import service
from control_plane.webhooks.delivery import deliver_due
from control_plane.webhooks.models import DeliveryStatus, WebhookDelivery, WebhookEvent
from tests.control_plane.conftest import TestUser, assert_error, make_settings
from tests.control_plane.live_server import Received, Receiver, json_body, receiver

JOB_DATA = {"job_id": "job_123", "status": "succeeded", "outputs": ["clip.es.mp4"]}


@pytest.fixture
def verifying_receiver() -> Iterator[Receiver]:
    """A webhook consumer: 204 when the signature verifies with the endpoint's secret, 401 otherwise."""
    with receiver() as state:

        def respond(received: Received) -> tuple[int, bytes]:
            try:
                Webhook(state.secret).verify(received.body, received.headers)
            except WebhookVerificationError:
                return 401, b"bad signature"
            return 204, b""

        state.respond = respond
        yield state


def _create(client: TestClient, user: TestUser, url: str, **body: Any) -> dict[str, Any]:
    response = client.post("/v1/webhook-endpoints", json={"url": url, **body}, headers=user.headers)
    assert response.status_code == 201, response.text
    return dict(response.json())


def _deliveries(session: Session) -> list[WebhookDelivery]:
    session.expire_all()
    return list(session.scalars(select(WebhookDelivery).order_by(WebhookDelivery.created_at, WebhookDelivery.id)))


def test_endpoint_crud_and_secret_shown_once(client: TestClient, make_user: Callable[..., TestUser]) -> None:
    user = make_user()
    created = _create(client, user, "https://hooks.example.com/octavia", description="prod", event_types=["job.failed"])
    assert created["secret"].startswith("whsec_") and len(created["secret"]) > 40
    Webhook(created["secret"])  # a secret the Standard Webhooks library accepts
    assert created["event_types"] == ["job.failed"] and created["description"] == "prod"
    everything = _create(client, user, "http://hooks.example.com/all")
    assert everything["event_types"] == ["job.succeeded", "job.failed", "job.canceled"]

    listed = client.get("/v1/webhook-endpoints", headers=user.headers).json()
    assert [e["id"] for e in listed["items"]] == [everything["id"], created["id"]]
    assert "secret" not in str(listed)
    one = client.get(f"/v1/webhook-endpoints/{created['id']}", headers=user.headers).json()
    assert one["url"] == "https://hooks.example.com/octavia" and "secret" not in one

    assert client.delete(f"/v1/webhook-endpoints/{created['id']}", headers=user.headers).status_code == 204
    assert_error(
        client.get(f"/v1/webhook-endpoints/{created['id']}", headers=user.headers), 404, "webhook_endpoint_not_found"
    )
    assert [e["id"] for e in client.get("/v1/webhook-endpoints", headers=user.headers).json()["items"]] == [
        everything["id"]
    ]


def test_users_cannot_see_or_delete_each_others_endpoints_or_deliveries(
    client: TestClient, make_user: Callable[..., TestUser], session: Session
) -> None:
    alice, bob = make_user(), make_user()
    endpoint = _create(client, alice, "https://alice.example.com/hook")
    service.emit_event(session, alice.id, "job.succeeded", JOB_DATA)
    assert client.get("/v1/webhook-endpoints", headers=bob.headers).json()["items"] == []
    for method, suffix in (("GET", ""), ("DELETE", ""), ("GET", "/deliveries")):
        response = client.request(method, f"/v1/webhook-endpoints/{endpoint['id']}{suffix}", headers=bob.headers)
        assert_error(response, 404, "webhook_endpoint_not_found")
    deliveries = client.get(f"/v1/webhook-endpoints/{endpoint['id']}/deliveries", headers=alice.headers).json()
    assert [d["event_type"] for d in deliveries["items"]] == ["job.succeeded"]


def test_emit_event_queues_one_delivery_per_subscribed_endpoint(
    client: TestClient, make_user: Callable[..., TestUser], session: Session
) -> None:
    alice, bob = make_user(), make_user()
    failures = _create(client, alice, "https://a.example.com/failures", event_types=["job.failed"])
    everything = _create(client, alice, "https://a.example.com/all")
    _create(client, bob, "https://b.example.com/all")
    service.emit_event(session, alice.id, "job.succeeded", JOB_DATA)
    service.emit_event(session, alice.id, "job.failed", {"job_id": "job_9"})
    got = [(str(d.endpoint_id), d.event_type, d.status, d.attempts) for d in _deliveries(session)]
    assert sorted(got) == sorted(
        [
            (everything["id"], "job.succeeded", DeliveryStatus.PENDING, 0),
            (everything["id"], "job.failed", DeliveryStatus.PENDING, 0),
            (failures["id"], "job.failed", DeliveryStatus.PENDING, 0),
        ]
    )
    with pytest.raises(ValueError, match="unknown webhook event type"):
        service.emit_event(session, alice.id, "job.exploded", {})
    with pytest.raises(ValueError, match="JSON"):
        service.emit_event(session, alice.id, "job.failed", {"when": object()})


def test_delivery_is_signed_and_verified_by_the_receiver(
    client: TestClient,
    make_user: Callable[..., TestUser],
    session: Session,
    session_factory: sessionmaker[Session],
    settings: Settings,
    verifying_receiver: Receiver,
) -> None:
    user = make_user()
    endpoint = _create(client, user, f"{verifying_receiver.url}/hooks")
    verifying_receiver.secret = endpoint["secret"]
    service.emit_event(session, user.id, "job.succeeded", JOB_DATA)
    session.flush()

    assert deliver_due(session_factory, settings=settings) == 1
    [request] = verifying_receiver.requests
    assert request.method == "POST" and request.path == "/hooks"
    body = json_body(request)
    assert body["type"] == "job.succeeded" and body["data"] == JOB_DATA and body["timestamp"].endswith("Z")
    event = session.scalars(select(WebhookEvent)).one()
    assert request.headers["webhook-id"] == f"evt_{event.id.hex}"
    assert abs(int(request.headers["webhook-timestamp"]) - time.time()) < 30
    assert request.headers["webhook-signature"].startswith("v1,")
    assert request.headers["content-type"] == "application/json"

    [delivery] = _deliveries(session)
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == (DeliveryStatus.SUCCEEDED, 1, 204)
    assert delivery.next_attempt_at is None and delivery.completed_at is not None
    assert deliver_due(session_factory, settings=settings) == 0  # nothing left to send

    log = client.get(f"/v1/webhook-endpoints/{endpoint['id']}/deliveries", headers=user.headers).json()["items"]
    assert [(d["status"], d["attempts"], d["last_status_code"]) for d in log] == [("succeeded", 1, 204)]
    metrics = client.get("/metrics").text
    assert 'octavia_webhook_deliveries_total{outcome="succeeded"}' in metrics


class _TamperingTransport(httpx2.HTTPTransport):
    """A man in the middle: changes the body after it was signed."""

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        body = request.read().replace(b"job_123", b"job_666")
        headers = {k: v for k, v in request.headers.items() if k.lower() != "content-length"}
        return super().handle_request(httpx2.Request(request.method, request.url, headers=headers, content=body))


def test_a_tampered_body_fails_verification_at_the_receiver(
    client: TestClient,
    make_user: Callable[..., TestUser],
    session: Session,
    session_factory: sessionmaker[Session],
    settings: Settings,
    verifying_receiver: Receiver,
) -> None:
    user = make_user()
    endpoint = _create(client, user, verifying_receiver.url)
    verifying_receiver.secret = endpoint["secret"]
    service.emit_event(session, user.id, "job.succeeded", JOB_DATA)
    session.flush()
    with httpx2.Client(transport=_TamperingTransport()) as tampering:
        assert deliver_due(session_factory, settings=settings, http_client=tampering) == 1
    [request] = verifying_receiver.requests
    assert b"job_666" in request.body
    [delivery] = _deliveries(session)
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == (DeliveryStatus.PENDING, 1, 401)
    # The same bytes untouched verify: the receiver really checks the signature.
    Webhook(endpoint["secret"]).verify(request.body.replace(b"job_666", b"job_123"), request.headers)


def test_failures_are_retried_with_exponential_backoff_then_failed(
    client: TestClient,
    make_user: Callable[..., TestUser],
    session: Session,
    session_factory: sessionmaker[Session],
    settings: Settings,
) -> None:
    retrying = settings.model_copy(update={"webhook_max_attempts": 5, "webhook_retry_base_seconds": 10.0})
    user = make_user()
    with receiver() as broken:
        broken.respond = lambda _received: (500, b"boom")
        _create(client, user, broken.url)
        start = utcnow()
        service.emit_event(session, user.id, "job.failed", {"job_id": "job_1"}, now=start)
        session.flush()

        now = start
        delays = []
        for attempt in range(1, 6):
            assert deliver_due(session_factory, now=now, settings=retrying) == 1
            [delivery] = _deliveries(session)
            assert (delivery.attempts, delivery.last_status_code, delivery.last_error) == (attempt, 500, "HTTP 500")
            if attempt < 5:
                assert delivery.status is DeliveryStatus.PENDING and delivery.next_attempt_at is not None
                delay = delivery.next_attempt_at - now
                delays.append(delay.total_seconds())
                # Not due a moment before the backoff ends.
                assert deliver_due(session_factory, now=now + delay - timedelta(seconds=1), settings=retrying) == 0
                now += delay
        assert delays == [10, 20, 40, 80]
        assert delivery.status is DeliveryStatus.FAILED and delivery.next_attempt_at is None
        assert deliver_due(session_factory, now=now + timedelta(days=1), settings=retrying) == 0
        assert len(broken.requests) == 5
        assert len({r.headers["webhook-id"] for r in broken.requests}) == 1  # same message id on every retry


def test_timeouts_and_refused_connections_are_failed_attempts(
    client: TestClient,
    make_user: Callable[..., TestUser],
    session: Session,
    session_factory: sessionmaker[Session],
    settings: Settings,
) -> None:
    impatient = settings.model_copy(update={"webhook_timeout_seconds": 0.3, "webhook_max_attempts": 2})
    user = make_user()
    with receiver() as slow:

        def stall(_received: Received) -> tuple[int, bytes]:
            time.sleep(1.0)
            return 200, b"too late"

        slow.respond = stall
        _create(client, user, slow.url, event_types=["job.canceled"])
        with receiver() as gone:
            closed_url = gone.url
        _create(client, user, closed_url, event_types=["job.canceled"])
        service.emit_event(session, user.id, "job.canceled", {"job_id": "job_2"})
        session.flush()
        assert deliver_due(session_factory, settings=impatient) == 2
    errors = sorted(str(d.last_error) for d in _deliveries(session))
    assert errors[0].startswith("ConnectError") and errors[1] == "timed out after 0.3 s"
    assert all(d.last_status_code is None and d.status is DeliveryStatus.PENDING for d in _deliveries(session))


def test_deleting_an_endpoint_drops_its_pending_deliveries(
    client: TestClient,
    make_user: Callable[..., TestUser],
    session: Session,
    session_factory: sessionmaker[Session],
    settings: Settings,
) -> None:
    user = make_user()
    with receiver() as hook:
        endpoint = _create(client, user, hook.url)
        service.emit_event(session, user.id, "job.succeeded", JOB_DATA)
        session.flush()
        assert client.delete(f"/v1/webhook-endpoints/{endpoint['id']}", headers=user.headers).status_code == 204
        assert deliver_due(session_factory, settings=settings) == 0
        assert hook.requests == []
    assert _deliveries(session) == []


def test_endpoint_validation(client: TestClient, make_user: Callable[..., TestUser]) -> None:
    user = make_user()
    bad_bodies: list[Any] = [
        {"url": "ftp://example.com/hook"},
        {"url": "javascript:alert(1)"},
        {"url": "http://"},
        {"url": "http://[::1"},
        {"url": "http://example.com:99999/"},
        {"url": "http://user:pw@example.com/"},
        {"url": "http://example.com/#frag"},
        {"url": ""},
        {"url": "https://example.com/" + "x" * 3000},
        {"url": "https://example.com/", "event_types": ["job.exploded"]},
        {"url": "https://example.com/", "event_types": []},
        {"url": "https://example.com/", "event_types": "job.failed"},
        {"url": "https://example.com/", "description": "d" * 300},
        {"url": 5},
        {},
        [],
        "text",
        None,
    ]
    for body in bad_bodies:
        response = client.post("/v1/webhook-endpoints", json=body, headers=user.headers)
        assert 400 <= response.status_code < 500, (body, response.text)
        assert_error(response, response.status_code)
    assert_error(client.get("/v1/webhook-endpoints/not-a-uuid", headers=user.headers), 422)
    assert_error(client.get("/v1/webhook-endpoints/not-a-uuid/deliveries", headers=user.headers), 422)
    assert_error(client.delete(f"/v1/webhook-endpoints/{uuid.uuid4()}", headers=user.headers), 404)
    assert_error(client.get("/v1/webhook-endpoints", params={"cursor": "%%"}, headers=user.headers), 422)
    assert_error(client.get("/v1/webhook-endpoints"), 401)
    assert client.get("/v1/webhook-endpoints", headers=user.headers).json()["items"] == []


def test_endpoint_limit(client: TestClient, make_user: Callable[..., TestUser]) -> None:
    user = make_user()
    for i in range(service.MAX_ENDPOINTS):
        _create(client, user, f"https://example.com/{i}")
    response = client.post("/v1/webhook-endpoints", json={"url": "https://example.com/x"}, headers=user.headers)
    assert_error(response, 409, "too_many_webhook_endpoints")


def test_production_refuses_private_destinations() -> None:
    production = make_settings(environment="production", smtp_host="smtp.example.com", jwt_secret="p" * 48)
    for url in (
        "http://127.0.0.1:8080/hook",
        "http://localhost/hook",
        "http://10.1.2.3/hook",
        "http://192.168.0.10/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/hook",
        "http://[fd00::1]/hook",
        "http://0.0.0.0/hook",
    ):
        with pytest.raises(service.WebhookUrlNotAllowedError):
            service.validate_url(url, production)
    assert service.validate_url("https://93.184.215.14/hook", production)
    allowed = production.model_copy(update={"webhook_allow_private_addresses": True})
    assert service.validate_url("http://127.0.0.1:8080/hook", allowed)
    development = make_settings()
    assert service.validate_url("http://127.0.0.1:8080/hook", development)

"""Sending queued webhook deliveries: `deliver_due`, called by the worker loop each tick.

Each delivery is a POST of the event's JSON with the Standard Webhooks headers (`webhook-id` = the event's id,
the same on every retry so receivers can deduplicate; `webhook-timestamp`; `webhook-signature` from the
`standardwebhooks` library). A 2xx answer is success; anything else (3xx included: redirects are not followed),
a timeout or a connection error is a failed attempt, retried after base x 2^(attempt-1) seconds until
OCTAVIA_WEBHOOK_MAX_ATTEMPTS, then the delivery is `failed`.

Three short transactions, none open during HTTP: take the due rows (locked, skipping rows another worker holds,
and leased forward so they are not taken again meanwhile), send, record each outcome.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx2
from sqlalchemy.orm import Session
from standardwebhooks.webhooks import Webhook

from control_plane import metrics
from control_plane.config import Settings
from control_plane.db import utcnow
from control_plane.webhooks.models import DeliveryStatus
from control_plane.webhooks.repository import WebhookRepository
from control_plane.webhooks.service import WebhookUrlNotAllowedError, check_destination

logger = logging.getLogger("control_plane.webhooks")

BATCH_SIZE = 50
USER_AGENT = "Octavia-Webhooks/1.0"
_LEASE_MARGIN = timedelta(seconds=60)


@dataclass(frozen=True)
class _Send:
    delivery_id: uuid.UUID
    url: str
    secret: str
    message_id: str
    body: str
    attempt: int


@dataclass(frozen=True)
class _Result:
    status_code: int | None
    error: str | None

    @property
    def succeeded(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def retry_delay(settings: Settings, attempt: int) -> timedelta:
    """How long to wait after failed attempt number `attempt` (1-based): base x 2^(attempt-1)."""
    return timedelta(seconds=settings.webhook_retry_base_seconds * 2 ** (attempt - 1))


def sign(secret: str, message_id: str, body: str, timestamp: datetime) -> dict[str, str]:
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(int(timestamp.timestamp())),
        "webhook-signature": Webhook(secret).sign(message_id, timestamp, body),
        "content-type": "application/json",
        "user-agent": USER_AGENT,
    }


def deliver_due(
    session_factory: Callable[[], Session],
    *,
    now: datetime | None = None,
    http_client: httpx2.Client | None = None,
    settings: Settings | None = None,
    limit: int = BATCH_SIZE,
) -> int:
    """Sends the deliveries due at `now` (default: the current time) and records each attempt; returns how many
    were attempted. `now` drives scheduling only: the signature timestamp is always the real time of sending,
    since receivers reject timestamps far from their clock."""
    now = now or utcnow()
    settings = settings or Settings()
    sends = _take_due(session_factory, settings, now, limit)
    if not sends:
        return 0
    client = http_client or httpx2.Client(timeout=settings.webhook_timeout_seconds, follow_redirects=False)
    try:
        for send in sends:
            result = _post(client, settings, send)
            _record(session_factory, settings, send, result, now)
    finally:
        if http_client is None:
            client.close()
    return len(sends)


def _take_due(session_factory: Callable[[], Session], settings: Settings, now: datetime, limit: int) -> list[_Send]:
    lease_until = now + timedelta(seconds=settings.webhook_timeout_seconds) * (limit + 1) + _LEASE_MARGIN
    with session_factory() as session, session.begin():
        sends = []
        for delivery, endpoint, event in WebhookRepository(session).due_deliveries(now, limit):
            delivery.next_attempt_at = lease_until
            sends.append(
                _Send(
                    delivery_id=delivery.id,
                    url=endpoint.url,
                    secret=endpoint.secret,
                    message_id=f"evt_{event.id.hex}",
                    body=json.dumps(event.payload, separators=(",", ":"), ensure_ascii=False),
                    attempt=delivery.attempts + 1,
                )
            )
        return sends


def _post(client: httpx2.Client, settings: Settings, send: _Send) -> _Result:
    try:
        check_destination(send.url, settings)
    except WebhookUrlNotAllowedError as exc:
        return _Result(None, exc.message)
    headers = sign(send.secret, send.message_id, send.body, utcnow())
    try:
        response = client.post(send.url, content=send.body.encode(), headers=headers)
    except httpx2.TimeoutException:
        return _Result(None, f"timed out after {settings.webhook_timeout_seconds:g} s")
    except httpx2.HTTPError as exc:
        return _Result(None, f"{type(exc).__name__}: {exc}"[:500])
    if 200 <= response.status_code < 300:
        return _Result(response.status_code, None)
    return _Result(response.status_code, f"HTTP {response.status_code}")


def _record(
    session_factory: Callable[[], Session], settings: Settings, send: _Send, result: _Result, now: datetime
) -> None:
    with session_factory() as session, session.begin():
        delivery = WebhookRepository(session).get_delivery(send.delivery_id)
        if delivery is None:  # the endpoint was deleted meanwhile
            return
        delivery.attempts = send.attempt
        delivery.last_attempt_at = now
        delivery.last_status_code = result.status_code
        delivery.last_error = result.error
        if result.succeeded:
            delivery.status = DeliveryStatus.SUCCEEDED
            delivery.next_attempt_at = None
            delivery.completed_at = now
            outcome: metrics.DeliveryOutcome = "succeeded"
        elif send.attempt >= settings.webhook_max_attempts:
            delivery.status = DeliveryStatus.FAILED
            delivery.next_attempt_at = None
            delivery.completed_at = now
            outcome = "failed"
        else:
            delivery.next_attempt_at = now + retry_delay(settings, send.attempt)
            outcome = "retrying"
    metrics.record_webhook_delivery(outcome)
    logger.info(
        "webhook delivery %s attempt %d to %s: %s (%s)",
        send.delivery_id,
        send.attempt,
        send.url,
        outcome,
        result.error or result.status_code,
    )

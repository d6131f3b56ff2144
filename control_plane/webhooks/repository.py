from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from control_plane.pagination import PageParams, paginate
from control_plane.webhooks.models import DeliveryStatus, WebhookDelivery, WebhookEndpoint, WebhookEvent


class WebhookRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, row: WebhookEndpoint | WebhookEvent | WebhookDelivery) -> None:
        self.session.add(row)
        self.session.flush()

    def count_endpoints(self, user_id: uuid.UUID) -> int:
        statement = select(func.count()).select_from(WebhookEndpoint).where(WebhookEndpoint.user_id == user_id)
        return int(self.session.scalar(statement) or 0)

    def get_endpoint(self, user_id: uuid.UUID, endpoint_id: uuid.UUID) -> WebhookEndpoint | None:
        return self.session.scalar(
            select(WebhookEndpoint).where(WebhookEndpoint.id == endpoint_id, WebhookEndpoint.user_id == user_id)
        )

    def list_endpoints(self, user_id: uuid.UUID, params: PageParams) -> tuple[list[WebhookEndpoint], str | None]:
        statement = select(WebhookEndpoint).where(WebhookEndpoint.user_id == user_id)
        return paginate(
            self.session, statement, order_by=[WebhookEndpoint.created_at, WebhookEndpoint.id], params=params
        )

    def all_endpoints(self, user_id: uuid.UUID) -> list[WebhookEndpoint]:
        statement = select(WebhookEndpoint).where(WebhookEndpoint.user_id == user_id).order_by(WebhookEndpoint.id)
        return list(self.session.scalars(statement))

    def delete_endpoint(self, endpoint: WebhookEndpoint) -> None:
        self.session.delete(endpoint)
        self.session.flush()

    def list_deliveries(self, endpoint_id: uuid.UUID, params: PageParams) -> tuple[list[WebhookDelivery], str | None]:
        statement = select(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint_id)
        return paginate(
            self.session, statement, order_by=[WebhookDelivery.created_at, WebhookDelivery.id], params=params
        )

    def due_deliveries(self, now: datetime, limit: int) -> list[tuple[WebhookDelivery, WebhookEndpoint, WebhookEvent]]:
        """Pending deliveries whose attempt is due, oldest first, locked; rows other workers hold are skipped."""
        statement = (
            select(WebhookDelivery, WebhookEndpoint, WebhookEvent)
            .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
            .join(WebhookEvent, WebhookEvent.id == WebhookDelivery.event_id)
            .where(WebhookDelivery.status == DeliveryStatus.PENDING, WebhookDelivery.next_attempt_at <= now)
            .order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.id)
            .limit(limit)
            .with_for_update(of=WebhookDelivery, skip_locked=True)
        )
        return [(row[0], row[1], row[2]) for row in self.session.execute(statement)]

    def get_delivery(self, delivery_id: uuid.UUID) -> WebhookDelivery | None:
        statement = (
            select(WebhookDelivery)
            .where(WebhookDelivery.id == delivery_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        return self.session.scalar(statement)

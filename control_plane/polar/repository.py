from __future__ import annotations

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from control_plane.polar.models import PolarWebhookEvent


class PolarWebhookEventRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def get(self, webhook_id: str) -> PolarWebhookEvent | None:
        return self.session.get(PolarWebhookEvent, webhook_id)

    def add_if_new(self, event: PolarWebhookEvent) -> bool:
        """Insert; False when this webhook id is already recorded (e.g. a concurrent redelivery won the race)."""
        try:
            with self.session.begin_nested():
                self.session.add(event)
        except IntegrityError:
            return False
        return True

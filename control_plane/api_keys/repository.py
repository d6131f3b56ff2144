from __future__ import annotations

import uuid

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from control_plane.api_keys.models import ApiKey
from control_plane.pagination import PageParams, paginate
from control_plane.users.models import User


class ApiKeyRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, key: ApiKey) -> ApiKey:
        self.session.add(key)
        self.session.flush()
        return key

    def get_with_owner(self, prefix: str) -> tuple[ApiKey, User] | None:
        """The key and its owner in one round trip: every request authenticated by a key starts here."""
        row = self.session.execute(
            select(ApiKey, User).join(User, User.id == ApiKey.user_id).where(ApiKey.prefix == prefix)
        ).first()
        return None if row is None else (row[0], row[1])

    def get_active_for_user(self, user_id: uuid.UUID, key_id: uuid.UUID) -> ApiKey | None:
        return self.session.scalar(
            select(ApiKey).where(ApiKey.id == key_id, ApiKey.user_id == user_id, ApiKey.revoked_at.is_(None))
        )

    def count_active(self, user_id: uuid.UUID) -> int:
        statement = (
            select(func.count()).select_from(ApiKey).where(ApiKey.user_id == user_id, ApiKey.revoked_at.is_(None))
        )
        return int(self.session.scalar(statement) or 0)

    def list_active(self, user_id: uuid.UUID, params: PageParams) -> tuple[list[ApiKey], str | None]:
        statement = select(ApiKey).where(ApiKey.user_id == user_id, ApiKey.revoked_at.is_(None))
        return paginate(self.session, statement, order_by=[ApiKey.created_at, ApiKey.id], params=params)

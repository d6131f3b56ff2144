from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from control_plane.auth.models import RefreshToken


class RefreshTokenRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, token: RefreshToken) -> RefreshToken:
        self.session.add(token)
        self.session.flush()
        return token

    def get_for_update(self, token_id: uuid.UUID) -> RefreshToken | None:
        statement = (
            select(RefreshToken)
            .where(RefreshToken.id == token_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        return self.session.scalar(statement)

    def revoke_family(self, family_id: uuid.UUID, when: datetime) -> int:
        result = self.session.execute(
            update(RefreshToken)
            .where(RefreshToken.family_id == family_id, RefreshToken.revoked_at.is_(None))
            .values(revoked_at=when)
            .execution_options(synchronize_session="fetch")
        )
        return int(getattr(result, "rowcount", 0))

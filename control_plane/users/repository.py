from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from control_plane.users.models import User


class UserRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def get(self, user_id: uuid.UUID) -> User | None:
        return self.session.get(User, user_id)

    def get_by_email(self, email: str) -> User | None:
        return self.session.scalar(select(User).where(User.email == email))

    def add(self, user: User) -> bool:
        """Insert `user`; False (and nothing written) when the email is taken, e.g. by a concurrent signup."""
        try:
            with self.session.begin_nested():
                self.session.add(user)
        except IntegrityError:
            return False
        return True

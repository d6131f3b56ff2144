from __future__ import annotations

import uuid

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from control_plane.credits.models import CreditAccount, CreditEntry, CreditReservation
from control_plane.db import utcnow
from control_plane.pagination import PageParams, paginate


class CreditRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def lock_account(self, user_id: uuid.UUID) -> CreditAccount:
        """The user's balance row, created if missing, locked until the transaction ends.

        PostgreSQL: `SELECT ... FOR UPDATE` serialises concurrent reservations on the row. SQLite ignores FOR UPDATE
        but every transaction starts with BEGIN IMMEDIATE (see `db.py`), which already serialises writers.
        """
        insert = postgresql_insert if self.session.get_bind().dialect.name == "postgresql" else sqlite_insert
        self.session.execute(
            insert(CreditAccount)
            .values(user_id=user_id, balance=0, reserved=0, updated_at=utcnow())
            .on_conflict_do_nothing(index_elements=["user_id"])
        )
        statement = (
            select(CreditAccount)
            .where(CreditAccount.user_id == user_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        return self.session.scalars(statement).one()

    def get_account(self, user_id: uuid.UUID) -> CreditAccount | None:
        return self.session.get(CreditAccount, user_id, populate_existing=True)

    def add_entry(self, entry: CreditEntry) -> CreditEntry:
        self.session.add(entry)
        self.session.flush()
        return entry

    def add_reservation(self, reservation: CreditReservation) -> CreditReservation:
        self.session.add(reservation)
        self.session.flush()
        return reservation

    def external_ref_exists(self, external_ref: str) -> bool:
        return self.session.scalar(select(CreditEntry.id).where(CreditEntry.external_ref == external_ref)) is not None

    def get_reservation(self, reservation_id: uuid.UUID, *, for_update: bool = False) -> CreditReservation | None:
        statement = select(CreditReservation).where(CreditReservation.id == reservation_id)
        if for_update:
            statement = statement.with_for_update().execution_options(populate_existing=True)
        return self.session.scalar(statement)

    def get_reservation_by_job(self, user_id: uuid.UUID, job_ref: str) -> CreditReservation | None:
        return self.session.scalar(
            select(CreditReservation).where(CreditReservation.user_id == user_id, CreditReservation.job_ref == job_ref)
        )

    def list_entries(self, user_id: uuid.UUID, params: PageParams) -> tuple[list[CreditEntry], str | None]:
        statement = select(CreditEntry).where(CreditEntry.user_id == user_id)
        return paginate(self.session, statement, order_by=[CreditEntry.id], params=params)

    def entry_sums(self, user_id: uuid.UUID) -> tuple[int, int]:
        """(sum of amounts, sum of reserved deltas): what the balance row must equal."""
        row = self.session.execute(
            select(
                func.coalesce(func.sum(CreditEntry.amount), 0), func.coalesce(func.sum(CreditEntry.reserved_delta), 0)
            ).where(CreditEntry.user_id == user_id)
        ).one()
        return int(row[0]), int(row[1])

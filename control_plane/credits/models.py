"""Credits: an append-only ledger plus one balance row per user, updated in the same transaction.

Two signed columns on every entry: `amount` moves the balance (credits owned), `reserved_delta` moves the part held
for running jobs. At all times, per user: sum(entries.amount) == account.balance, sum(entries.reserved_delta) ==
account.reserved, and 0 <= reserved <= balance (so available = balance - reserved >= 0).

    grant / purchase   amount +n   reserved  0
    reserve            amount  0   reserved +r      (hold)
    capture            amount -u   reserved -u      (charge what was used)
    release            amount  0   reserved -(r-u)  (give back the rest)
"""

from __future__ import annotations

import enum
import uuid
from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, Enum, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from control_plane.db import Base, CreatedAt, utcnow

# SQLite only auto-increments INTEGER PRIMARY KEY.
BigIntegerId = BigInteger().with_variant(Integer(), "sqlite")


def _values(enum_class: type[enum.Enum]) -> list[str]:
    return [str(member.value) for member in enum_class]


class EntryKind(enum.StrEnum):
    GRANT = "grant"
    PURCHASE = "purchase"
    RESERVE = "reserve"
    CAPTURE = "capture"
    RELEASE = "release"


class ReservationStatus(enum.StrEnum):
    ACTIVE = "active"
    CAPTURED = "captured"
    RELEASED = "released"


class CreditAccount(Base):
    __tablename__ = "credit_accounts"
    __table_args__ = (
        CheckConstraint("reserved >= 0", name="reserved_not_negative"),
        CheckConstraint("balance >= reserved", name="balance_covers_reserved"),
    )

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    balance: Mapped[int] = mapped_column(BigInteger, default=0)
    reserved: Mapped[int] = mapped_column(BigInteger, default=0)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    @property
    def available(self) -> int:
        return self.balance - self.reserved


class CreditReservation(CreatedAt, Base):
    __tablename__ = "credit_reservations"
    __table_args__ = (
        UniqueConstraint("user_id", "job_ref", name="uq_credit_reservations_user_job"),
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint("captured IS NULL OR (captured >= 0 AND captured <= amount)", name="captured_within_amount"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    job_ref: Mapped[str] = mapped_column(String(255))
    amount: Mapped[int] = mapped_column(BigInteger)
    captured: Mapped[int | None] = mapped_column(BigInteger, default=None)
    status: Mapped[ReservationStatus] = mapped_column(
        Enum(ReservationStatus, native_enum=False, length=16, values_callable=_values),
        default=ReservationStatus.ACTIVE,
    )
    settled_at: Mapped[datetime | None] = mapped_column(default=None)


class CreditEntry(CreatedAt, Base):
    __tablename__ = "credit_entries"

    id: Mapped[int] = mapped_column(BigIntegerId, primary_key=True, autoincrement=True)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    kind: Mapped[EntryKind] = mapped_column(Enum(EntryKind, native_enum=False, length=16, values_callable=_values))
    amount: Mapped[int] = mapped_column(BigInteger)
    reserved_delta: Mapped[int] = mapped_column(BigInteger, default=0)
    reservation_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("credit_reservations.id", ondelete="RESTRICT"), index=True, default=None
    )
    # Free text shown to the user: a job reference, "signup bonus", an admin's reason, a Polar order id.
    reference: Mapped[str | None] = mapped_column(String(500), default=None)
    # Idempotency key for credits coming from outside (a Polar order, the signup bonus): one entry per key.
    external_ref: Mapped[str | None] = mapped_column(String(255), unique=True, default=None)

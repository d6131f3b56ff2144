"""Credit operations. Each one locks the user's balance row, appends ledger entries and updates the balance in the
caller's transaction (polar `transaction/service/balance.py`); nothing here commits.

Jobs use `reserve` before running, then `capture(used)` (charges `used`, releases the rest) or `release` when they
fail. Both are idempotent on the reservation: settling twice charges once. `reserve` is idempotent on `job_ref`.
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass

from sqlalchemy.orm import Session

from control_plane import metrics
from control_plane.config import Settings
from control_plane.credits.models import (
    CreditAccount,
    CreditEntry,
    CreditReservation,
    EntryKind,
    ReservationStatus,
)
from control_plane.credits.repository import CreditRepository
from control_plane.db import utcnow
from control_plane.errors import ApiError, ConflictError, ResourceNotFoundError
from control_plane.pagination import PageParams
from control_plane.users.models import User
from octavia.languages import normalize


class InsufficientCreditsError(ApiError):
    status_code = 402
    code = "insufficient_credits"

    def __init__(self, required: int, available: int) -> None:
        shortfall = required - available
        super().__init__(
            f"not enough credits: {required} needed, {available} available ({shortfall} short)",
            details={"required": required, "available": available, "shortfall": shortfall},
        )


class ReservationNotFoundError(ResourceNotFoundError):
    code = "reservation_not_found"


class ReservationSettledError(ConflictError):
    code = "reservation_settled"


@dataclass(frozen=True)
class Balance:
    balance: int
    reserved: int

    @property
    def available(self) -> int:
        return self.balance - self.reserved


@dataclass(frozen=True)
class Estimate:
    credits: int
    started_minutes: int
    target_languages: list[str]
    credits_per_minute: int


def get_balance(session: Session, user_id: uuid.UUID) -> Balance:
    account = CreditRepository(session).get_account(user_id)
    return Balance(0, 0) if account is None else Balance(account.balance, account.reserved)


def list_ledger(session: Session, user_id: uuid.UUID, params: PageParams) -> tuple[list[CreditEntry], str | None]:
    return CreditRepository(session).list_entries(user_id, params)


def grant(
    session: Session,
    user_id: uuid.UUID,
    amount: int,
    *,
    kind: EntryKind = EntryKind.GRANT,
    reference: str | None = None,
    external_ref: str | None = None,
) -> CreditEntry | None:
    """Adds `amount` credits. With `external_ref`, applies once: None when that reference was already credited."""
    if amount <= 0:
        raise ValueError(f"grant amount must be positive, got {amount}")
    if kind not in (EntryKind.GRANT, EntryKind.PURCHASE):
        raise ValueError(f"grant kind must be grant or purchase, got {kind}")
    repository = CreditRepository(session)
    account = repository.lock_account(user_id)
    # Checked under the account lock, so two deliveries of the same purchase cannot both pass.
    if external_ref is not None and repository.external_ref_exists(external_ref):
        return None
    account.balance += amount
    return repository.add_entry(
        CreditEntry(
            user_id=user_id, kind=kind, amount=amount, reserved_delta=0, reference=reference, external_ref=external_ref
        )
    )


def admin_grant(session: Session, admin: User, user_id: uuid.UUID, amount: int, reason: str) -> CreditEntry:
    """A manual grant; the ledger keeps who gave it and why."""
    entry = grant(session, user_id, amount, kind=EntryKind.GRANT, reference=f"{reason} (granted by {admin.email})")
    if entry is None:  # unreachable: no external_ref
        raise RuntimeError("grant without external_ref was not applied")
    return entry


def reserve(session: Session, user_id: uuid.UUID, amount: int, job_ref: str) -> CreditReservation:
    """Holds `amount` credits for `job_ref`; `InsufficientCreditsError` (402, with the shortfall) if short."""
    if amount <= 0:
        raise ValueError(f"reservation amount must be positive, got {amount}")
    repository = CreditRepository(session)
    # Looked up before the account lock, which every reservation of the user waits on: callers reserve a
    # job_ref once per run (new jobs have new ids, a retry locks the job row first), and the unique
    # (user_id, job_ref) constraint would refuse a second hold anyway.
    existing = repository.get_reservation_by_job(user_id, job_ref)
    if existing is not None:
        return existing
    account = repository.lock_account(user_id)
    if amount > account.available:
        raise InsufficientCreditsError(required=amount, available=account.available)
    account.reserved += amount
    reservation = repository.add_reservation(CreditReservation(user_id=user_id, job_ref=job_ref, amount=amount))
    repository.add_entry(
        CreditEntry(
            user_id=user_id,
            kind=EntryKind.RESERVE,
            amount=0,
            reserved_delta=amount,
            reservation_id=reservation.id,
            reference=job_ref,
        )
    )
    metrics.record_credits("reserved", amount)
    return reservation


def capture(session: Session, reservation_id: uuid.UUID, used: int) -> CreditReservation:
    """Charges `used` (0 <= used <= reserved) and releases the rest. A second capture charges nothing."""
    repository, account, reservation = _lock_reservation(session, reservation_id)
    if reservation.status is ReservationStatus.CAPTURED:
        return reservation
    if reservation.status is ReservationStatus.RELEASED:
        raise ReservationSettledError(
            "reservation was released; it cannot be captured", details={"reservation_id": str(reservation_id)}
        )
    if not 0 <= used <= reservation.amount:
        raise ValueError(f"used must be between 0 and the reserved {reservation.amount}, got {used}")
    account.balance -= used
    account.reserved -= reservation.amount
    repository.add_entry(
        CreditEntry(
            user_id=reservation.user_id,
            kind=EntryKind.CAPTURE,
            amount=-used,
            reserved_delta=-used,
            reservation_id=reservation.id,
            reference=reservation.job_ref,
        )
    )
    if reservation.amount > used:
        _add_release_entry(repository, reservation, reservation.amount - used)
    reservation.status = ReservationStatus.CAPTURED
    reservation.captured = used
    reservation.settled_at = utcnow()
    session.flush()
    metrics.record_credits("captured", used)
    metrics.record_credits("released", reservation.amount - used)
    return reservation


def release(session: Session, reservation_id: uuid.UUID) -> CreditReservation:
    """Gives the whole hold back (a failed or cancelled job). Releasing a settled reservation does nothing."""
    repository, account, reservation = _lock_reservation(session, reservation_id)
    if reservation.status is not ReservationStatus.ACTIVE:
        return reservation
    account.reserved -= reservation.amount
    _add_release_entry(repository, reservation, reservation.amount)
    reservation.status = ReservationStatus.RELEASED
    reservation.settled_at = utcnow()
    session.flush()
    metrics.record_credits("released", reservation.amount)
    return reservation


def estimate(settings: Settings, duration_seconds: float, target_languages: list[str]) -> Estimate:
    """Credits = started minutes x target languages x `OCTAVIA_CREDITS_PER_MINUTE`. Languages are normalised and
    deduplicated ('es', 'spa' and 'es-MX' are one language); an unknown code raises UnsupportedLanguageError."""
    if duration_seconds <= 0:
        raise ValueError(f"duration must be positive, got {duration_seconds}")
    languages = list(dict.fromkeys(normalize(code) for code in target_languages))
    started_minutes = math.ceil(duration_seconds / 60)
    return Estimate(
        credits=started_minutes * len(languages) * settings.credits_per_minute,
        started_minutes=started_minutes,
        target_languages=languages,
        credits_per_minute=settings.credits_per_minute,
    )


def _lock_reservation(
    session: Session, reservation_id: uuid.UUID
) -> tuple[CreditRepository, CreditAccount, CreditReservation]:
    repository = CreditRepository(session)
    found = repository.get_reservation(reservation_id)
    if found is None:
        raise ReservationNotFoundError("no such reservation", details={"reservation_id": str(reservation_id)})
    # Account first, then reservation: the same lock order as `reserve`, so no deadlock between them.
    account = repository.lock_account(found.user_id)
    reservation = repository.get_reservation(reservation_id, for_update=True)
    if reservation is None:  # deleted between the two reads (user removed)
        raise ReservationNotFoundError("no such reservation", details={"reservation_id": str(reservation_id)})
    return repository, account, reservation


def _add_release_entry(repository: CreditRepository, reservation: CreditReservation, amount: int) -> None:
    repository.add_entry(
        CreditEntry(
            user_id=reservation.user_id,
            kind=EntryKind.RELEASE,
            amount=0,
            reserved_delta=-amount,
            reservation_id=reservation.id,
            reference=reservation.job_ref,
        )
    )

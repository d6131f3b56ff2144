"""Property: any sequence of grant / reserve / capture / release keeps, after every step,
sum(entries.amount) == balance, sum(entries.reserved_delta) == reserved, 0 <= reserved <= balance, and matches a
plain-Python model of what the balance should be. Runs on both databases."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from control_plane.credits import service
from control_plane.credits.models import CreditReservation, ReservationStatus
from control_plane.credits.repository import CreditRepository
from control_plane.users.models import User
from tests.control_plane.conftest import PASSWORD_HASH

operations = st.lists(
    st.one_of(
        st.tuples(st.just("grant"), st.integers(1, 100)),
        st.tuples(st.just("reserve"), st.integers(1, 150)),
        st.tuples(st.just("capture"), st.integers(0, 7), st.floats(0, 1)),
        st.tuples(st.just("release"), st.integers(0, 7)),
    ),
    max_size=25,
)


@dataclass
class Model:
    balance: int = 0
    reserved: int = 0
    reservations: list[tuple[uuid.UUID, int]] = field(default_factory=list)
    settled: dict[uuid.UUID, str] = field(default_factory=dict)


def _check(session: Session, user_id: uuid.UUID, model: Model) -> None:
    balance = service.get_balance(session, user_id)
    assert (balance.balance, balance.reserved) == (model.balance, model.reserved)
    assert CreditRepository(session).entry_sums(user_id) == (balance.balance, balance.reserved)
    assert 0 <= balance.reserved <= balance.balance
    active = session.scalar(
        select(func.coalesce(func.sum(CreditReservation.amount), 0)).where(
            CreditReservation.user_id == user_id, CreditReservation.status == ReservationStatus.ACTIVE
        )
    )
    assert active == balance.reserved


@settings(max_examples=75, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=operations)
def test_ledger_always_sums_to_the_balance(session: Session, ops: list[tuple[object, ...]]) -> None:
    user = User(email=f"prop-{uuid.uuid4().hex}@example.com", password_hash=PASSWORD_HASH)
    session.add(user)
    session.flush()
    model = Model()
    for step, op in enumerate(ops):
        kind = op[0]
        if kind == "grant":
            amount = int(op[1])  # type: ignore[call-overload]
            service.grant(session, user.id, amount)
            model.balance += amount
        elif kind == "reserve":
            amount = int(op[1])  # type: ignore[call-overload]
            try:
                reservation = service.reserve(session, user.id, amount, f"job-{step}")
            except service.InsufficientCreditsError as short:
                assert amount > model.balance - model.reserved
                assert short.details["shortfall"] == amount - (model.balance - model.reserved)
            else:
                model.reserved += amount
                model.reservations.append((reservation.id, amount))
        elif model.reservations:
            reservation_id, amount = model.reservations[int(op[1]) % len(model.reservations)]  # type: ignore[call-overload]
            state = model.settled.get(reservation_id)
            if kind == "capture":
                used = round(amount * float(op[2]))  # type: ignore[arg-type]
                try:
                    service.capture(session, reservation_id, used)
                except service.ReservationSettledError:
                    assert state == "released"
                else:
                    assert state in (None, "captured")
                    if state is None:
                        model.balance -= used
                        model.reserved -= amount
                        model.settled[reservation_id] = "captured"
            else:
                service.release(session, reservation_id)
                if state is None:
                    model.reserved -= amount
                    model.settled[reservation_id] = "released"
        _check(session, user.id, model)

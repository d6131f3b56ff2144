from __future__ import annotations

from fastapi import APIRouter, status

from control_plane.credits import service
from control_plane.credits.schemas import (
    AdminGrantRead,
    AdminGrantRequest,
    BalanceRead,
    EstimateRead,
    EstimateRequest,
    LedgerEntryRead,
)
from control_plane.deps import AdminUser, CurrentUser, SessionDep, SettingsDep
from control_plane.pagination import Page, PageParamsDep
from control_plane.routing import UnitOfWorkRoute
from control_plane.users import service as users_service

router = APIRouter(route_class=UnitOfWorkRoute, prefix="/credits", tags=["credits"])
admin_router = APIRouter(route_class=UnitOfWorkRoute, prefix="/admin/credits", tags=["admin"])


def _balance_read(balance: service.Balance) -> BalanceRead:
    return BalanceRead(balance=balance.balance, reserved=balance.reserved, available=balance.available)


@router.get("", response_model=BalanceRead)
def read_balance(user: CurrentUser, session: SessionDep) -> BalanceRead:
    return _balance_read(service.get_balance(session, user.id))


@router.get("/ledger", response_model=Page[LedgerEntryRead])
def read_ledger(user: CurrentUser, session: SessionDep, page: PageParamsDep) -> Page[LedgerEntryRead]:
    """Ledger entries, newest first."""
    entries, next_cursor = service.list_ledger(session, user.id, page)
    return Page[LedgerEntryRead](items=[LedgerEntryRead.model_validate(e) for e in entries], next_cursor=next_cursor)


@router.post("/estimate", response_model=EstimateRead)
def estimate(body: EstimateRequest, user: CurrentUser, session: SessionDep, settings: SettingsDep) -> EstimateRead:
    """What dubbing a video of `duration_seconds` into `target_languages` costs, and whether you can afford it."""
    quote = service.estimate(settings, body.duration_seconds, body.target_languages)
    available = service.get_balance(session, user.id).available
    return EstimateRead(
        credits=quote.credits,
        started_minutes=quote.started_minutes,
        target_languages=quote.target_languages,
        credits_per_minute=quote.credits_per_minute,
        available=available,
        sufficient=available >= quote.credits,
    )


@admin_router.post("/grant", status_code=status.HTTP_201_CREATED, response_model=AdminGrantRead)
def admin_grant(body: AdminGrantRequest, admin: AdminUser, session: SessionDep) -> AdminGrantRead:
    """Adds credits to a user's balance (admins only)."""
    target = users_service.find_user(session, user_id=body.user_id, email=body.email)
    entry = service.admin_grant(session, admin, target.id, body.amount, body.reason)
    return AdminGrantRead(
        user_id=target.id,
        entry=LedgerEntryRead.model_validate(entry),
        balance=_balance_read(service.get_balance(session, target.id)),
    )

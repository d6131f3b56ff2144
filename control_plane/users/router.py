from __future__ import annotations

from fastapi import APIRouter

from control_plane.deps import CurrentUser
from control_plane.routing import UnitOfWorkRoute
from control_plane.users.schemas import UserRead

router = APIRouter(route_class=UnitOfWorkRoute, prefix="/users", tags=["users"])


@router.get("/me", response_model=UserRead)
def read_me(user: CurrentUser) -> UserRead:
    return UserRead.model_validate(user)

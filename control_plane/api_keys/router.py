from __future__ import annotations

import uuid

from fastapi import APIRouter, status

from control_plane.api_keys import service
from control_plane.api_keys.schemas import ApiKeyCreate, ApiKeyCreated, ApiKeyRead
from control_plane.deps import CurrentUser, SessionDep
from control_plane.pagination import Page, PageParamsDep
from control_plane.routing import UnitOfWorkRoute

router = APIRouter(route_class=UnitOfWorkRoute, prefix="/api-keys", tags=["api keys"])


@router.post("", status_code=status.HTTP_201_CREATED, response_model=ApiKeyCreated)
def create_api_key(body: ApiKeyCreate, user: CurrentUser, session: SessionDep) -> ApiKeyCreated:
    """Creates a key. The response is the only time the full key is shown."""
    key, plaintext = service.create_key(session, user, body.name)
    return ApiKeyCreated.model_validate({**ApiKeyRead.model_validate(key).model_dump(), "key": plaintext})


@router.get("", response_model=Page[ApiKeyRead])
def list_api_keys(user: CurrentUser, session: SessionDep, page: PageParamsDep) -> Page[ApiKeyRead]:
    """Your active keys, newest first."""
    keys, next_cursor = service.list_keys(session, user, page)
    return Page[ApiKeyRead](items=[ApiKeyRead.model_validate(k) for k in keys], next_cursor=next_cursor)


@router.delete("/{api_key_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_api_key(api_key_id: uuid.UUID, user: CurrentUser, session: SessionDep) -> None:
    """Revokes the key at once: the next request made with it is refused."""
    service.revoke_key(session, user, api_key_id)

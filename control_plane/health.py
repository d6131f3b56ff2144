from __future__ import annotations

from typing import Literal

from fastapi import APIRouter
from pydantic import BaseModel

router = APIRouter(tags=["health"])


class Health(BaseModel):
    status: Literal["ok"] = "ok"


@router.get("/healthz", response_model=Health)
def healthz() -> Health:
    """Liveness: the process answers. (Readiness, with the database, is /readyz.)"""
    return Health()

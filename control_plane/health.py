"""Liveness (`/healthz`: the process answers) and readiness (`/readyz`: the database and Ray are reachable).

Ray is checked through its dashboard's `GET /api/version`, the address job submission uses. OCTAVIA_RAY_ADDRESS
`http(s)://host:8265` is probed as is; `ray://host:port` or `host:port` is probed at `http://host:8265` (Ray's
default dashboard port); empty means Ray runs embedded in the worker, so there is nothing remote to check.
"""

from __future__ import annotations

from typing import Literal
from urllib.parse import urlsplit

import httpx2
from fastapi import APIRouter, Request
from pydantic import BaseModel
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from control_plane.deps import SettingsDep
from control_plane.errors import ServiceUnavailableError
from control_plane.exception_handlers import ErrorResponse
from control_plane.routing import UnitOfWorkRoute

router = APIRouter(route_class=UnitOfWorkRoute, tags=["health"])

RAY_DASHBOARD_PORT = 8265
RAY_PROBE_TIMEOUT_SECONDS = 2.0


class Health(BaseModel):
    status: Literal["ok"] = "ok"


class Check(BaseModel):
    status: Literal["ok", "not_configured", "error"]
    detail: str | None = None


class Readiness(BaseModel):
    status: Literal["ok"] = "ok"
    checks: dict[str, Check]


class NotReadyError(ServiceUnavailableError):
    code = "not_ready"


@router.get("/healthz", response_model=Health)
def healthz() -> Health:
    """Liveness: the process answers. (Readiness, with the database, is /readyz.)"""
    return Health()


def check_database(session_factory: sessionmaker[Session]) -> Check:
    try:
        with session_factory() as session:
            session.execute(text("SELECT 1"))
    except SQLAlchemyError as exc:
        return Check(status="error", detail=f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}")
    return Check(status="ok")


def ray_dashboard_url(address: str) -> str:
    parts = urlsplit(address if "://" in address else f"ray://{address}")
    if parts.scheme in ("http", "https"):
        return address.rstrip("/")
    return f"http://{parts.hostname}:{RAY_DASHBOARD_PORT}"


def check_ray(address: str | None, timeout_seconds: float = RAY_PROBE_TIMEOUT_SECONDS) -> Check:
    if not address or address in ("auto", "local"):
        return Check(status="not_configured", detail="no OCTAVIA_RAY_ADDRESS: Ray runs embedded in the worker")
    try:
        url = f"{ray_dashboard_url(address)}/api/version"
        response = httpx2.get(url, timeout=timeout_seconds)
        response.raise_for_status()
        version = response.json().get("ray_version")
    except (httpx2.HTTPError, ValueError, AttributeError) as exc:
        return Check(status="error", detail=f"Ray dashboard at {address} unreachable: {type(exc).__name__}: {exc}")
    return Check(status="ok", detail=f"Ray {version}" if version else None)


@router.get("/readyz", response_model=Readiness, responses={503: {"model": ErrorResponse, "description": "not ready"}})
def readyz(request: Request, settings: SettingsDep) -> Readiness:
    """Readiness: the database answers `SELECT 1` and the Ray cluster (if configured) answers; 503 otherwise, with
    every check in `details.checks`."""
    checks = {"database": check_database(request.app.state.session_factory), "ray": check_ray(settings.ray_address)}
    failing = sorted(name for name, check in checks.items() if check.status == "error")
    if failing:
        raise NotReadyError(
            f"not ready: {', '.join(failing)} unreachable",
            details={"checks": {name: check.model_dump() for name, check in checks.items()}},
        )
    return Readiness(checks=checks)

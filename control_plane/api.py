"""Where every router is registered: add a new domain's router here (uploads, jobs, webhooks, ...)."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI

from control_plane.api_keys.router import router as api_keys_router
from control_plane.auth.router import router as auth_router
from control_plane.credits.router import admin_router as admin_credits_router
from control_plane.credits.router import router as credits_router
from control_plane.exception_handlers import ErrorResponse
from control_plane.health import router as health_router
from control_plane.jobs.router import internal_router as jobs_internal_router
from control_plane.jobs.router import router as jobs_router
from control_plane.polar.router import router as polar_router
from control_plane.uploads.router import router as uploads_router
from control_plane.users.router import router as users_router
from control_plane.webhooks.router import router as webhook_endpoints_router

# Documented for every /v1 operation, so generated clients and schemathesis know the error shape.
ERROR_RESPONSES: dict[int | str, dict[str, object]] = {"4XX": {"model": ErrorResponse, "description": "client error"}}

# Included straight into the app, not through a `/v1` parent router: FastAPI matches a request once per level of
# nesting and walks every candidate at each level, which was ~40 % of the CPU of a `GET /v1/jobs/{id}`
# (docs/benchmarks.md). The most requested routers come first; their paths do not overlap, so order changes nothing
# else.
V1_PREFIX = "/v1"
V1_ROUTERS: tuple[APIRouter, ...] = (
    jobs_router,
    uploads_router,
    credits_router,
    api_keys_router,
    webhook_endpoints_router,
    auth_router,
    users_router,
    admin_credits_router,
    polar_router,
)
# Outside /v1 (and, for the pipeline's progress channel, outside the schema).
ROOT_ROUTERS: tuple[APIRouter, ...] = (health_router, jobs_internal_router)


def include_routers(app: FastAPI) -> None:
    for router in V1_ROUTERS:
        app.include_router(router, prefix=V1_PREFIX, responses=ERROR_RESPONSES)
    for router in ROOT_ROUTERS:
        app.include_router(router)

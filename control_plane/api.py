"""Where every router is registered: add a new domain's router here (uploads, jobs, webhooks, ...)."""

from __future__ import annotations

from fastapi import APIRouter

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

api_router = APIRouter(prefix="/v1", responses=ERROR_RESPONSES)
for router in (auth_router, users_router, api_keys_router, credits_router, admin_credits_router, polar_router):
    api_router.include_router(router)
api_router.include_router(uploads_router)
api_router.include_router(webhook_endpoints_router)
api_router.include_router(jobs_router)

root_router = APIRouter()
root_router.include_router(health_router)
root_router.include_router(jobs_internal_router)  # the pipeline's progress channel, outside /v1 and the schema

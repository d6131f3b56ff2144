"""The FastAPI application factory: `create_app(settings)` builds one app; nothing happens at import."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio.to_thread
from fastapi import FastAPI
from sqlalchemy.orm import Session, sessionmaker

from control_plane.api import include_routers
from control_plane.config import Settings
from control_plane.db import create_db_engine, create_session_factory
from control_plane.exception_handlers import register_exception_handlers
from control_plane.jobs.ray_runner import JobRunner
from control_plane.jobs.reconciler import JobsWorker, Reconciler, runner_from_settings
from control_plane.mail import Mailer, mailer_from_settings
from control_plane.metrics import install_metrics
from control_plane.ratelimit import RateLimiter, TokenBucketLimiter

API_DESCRIPTION = """Octavia's control plane: accounts, API keys, credits and (next) uploads, jobs and webhooks.

Authenticate with `Authorization: Bearer <token>`, where the token is an access token from `POST /v1/auth/login`
or an API key from `POST /v1/api-keys`. Every error has the shape
`{"error": {"code": "...", "message": "...", "details": {...}}}`.
"""


def create_app(
    settings: Settings | None = None,
    *,
    session_factory: sessionmaker[Session] | None = None,
    mailer: Mailer | None = None,
    rate_limiter: RateLimiter | None = None,
    auth_rate_limiter: RateLimiter | None = None,
    job_runner: JobRunner | None = None,
) -> FastAPI:
    """The app for `settings`. The keyword arguments replace the parts built from settings (tests, embedding)."""
    settings = settings or Settings()
    engine = None
    if session_factory is None:
        engine = create_db_engine(
            settings.database_url, pool_size=settings.database_pool_size, max_overflow=settings.database_max_overflow
        )
        session_factory = create_session_factory(engine)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        # No more thread-pool threads than pooled connections: each thread holds at most one (control_plane/deps.py).
        anyio.to_thread.current_default_thread_limiter().total_tokens = settings.database_pool_size
        worker = None
        if settings.jobs_worker_enabled:
            # One background task: submits and polls Ray jobs, delivers webhooks, sweeps expired uploads.
            runner = job_runner or runner_from_settings(settings)
            worker = JobsWorker(Reconciler(settings, session_factory, runner), settings.jobs_worker_interval_seconds)
            worker.start()
        yield
        if worker is not None:
            await worker.stop()
        if engine is not None:
            engine.dispose()

    app = FastAPI(
        title="Octavia control plane",
        version="0.1.0",
        description=API_DESCRIPTION,
        lifespan=lifespan,
        docs_url="/docs",
        redoc_url=None,
    )
    state: Any = app.state
    state.settings = settings
    state.session_factory = session_factory
    state.mailer = mailer or mailer_from_settings(settings)
    state.rate_limiter = rate_limiter or TokenBucketLimiter(settings.rate_limit_per_minute, settings.rate_limit_burst)
    state.auth_rate_limiter = auth_rate_limiter or TokenBucketLimiter(
        settings.auth_rate_limit_per_minute, settings.auth_rate_limit_burst
    )
    register_exception_handlers(app)
    state.metrics_registry = install_metrics(app)
    include_routers(app)
    return app

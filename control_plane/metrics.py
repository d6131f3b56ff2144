"""Prometheus metrics: HTTP metrics per app (prometheus-fastapi-instrumentator) plus the domain metrics below.

The domain metrics live in one process-wide registry, `DOMAIN_REGISTRY` (not prometheus_client's global one, which
Ray and other libraries share), because services feed them without an app at hand. Each app gets its own registry
for the HTTP metrics, with the domain registry attached as a collector, so building many apps (tests) never
registers a name twice. Counters count in this process; with several workers Prometheus sums the scrapes.

Fed by:
- the jobs worker: `set_jobs_by_status(counts)` each tick, `observe_job_finished(status, queue_wait_s, duration_s)`;
- credits/service.py: `record_credits(kind, amount)` on reserve / capture / release;
- webhooks/delivery.py: `record_webhook_delivery(outcome)` per attempt;
- uploads/service.py: `record_upload(outcome)` when an upload completes, is rejected or expires.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

from fastapi import FastAPI, Request
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector
from prometheus_fastapi_instrumentator import Instrumentator
from prometheus_fastapi_instrumentator.middleware import PrometheusInstrumentatorMiddleware
from prometheus_fastapi_instrumentator.routing import _effective_routes
from starlette._utils import get_route_path
from starlette.middleware import Middleware
from starlette.routing import BaseRoute

DOMAIN_REGISTRY = CollectorRegistry()

JOBS_BY_STATUS = Gauge("octavia_jobs", "Jobs by status (set by the jobs worker)", ["status"], registry=DOMAIN_REGISTRY)
JOBS_FINISHED = Counter(
    "octavia_jobs_finished", "Jobs that reached a final status", ["status"], registry=DOMAIN_REGISTRY
)
JOB_QUEUE_WAIT = Histogram(
    "octavia_job_queue_wait_seconds",
    "Time from job creation to the start of its run",
    buckets=(1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 4 * 3600),
    registry=DOMAIN_REGISTRY,
)
JOB_DURATION = Histogram(
    "octavia_job_duration_seconds",
    "Run time of finished jobs, by final status",
    ["status"],
    buckets=(10, 30, 60, 120, 300, 600, 1200, 1800, 3600, 2 * 3600, 4 * 3600, 8 * 3600),
    registry=DOMAIN_REGISTRY,
)
CREDITS = Counter(
    "octavia_credits",
    "Credits moved by jobs: reserved (held), captured (charged), released (given back)",
    ["kind"],
    registry=DOMAIN_REGISTRY,
)
WEBHOOK_DELIVERIES = Counter(
    "octavia_webhook_deliveries",
    "Outbound webhook delivery attempts by outcome: succeeded, retrying (will be retried), failed (gave up)",
    ["outcome"],
    registry=DOMAIN_REGISTRY,
)
UPLOADS = Counter(
    "octavia_uploads", "Uploads by final outcome: complete, rejected, expired", ["outcome"], registry=DOMAIN_REGISTRY
)
JOB_FILES_REMOVED = Counter(
    "octavia_job_files_removed",
    "Job folders removed from DATA_DIR by the worker: deleted (the user deleted the job), expired (retention)",
    ["reason"],
    registry=DOMAIN_REGISTRY,
)

_job_statuses_seen: set[str] = set()

CreditKind = Literal["reserved", "captured", "released"]
DeliveryOutcome = Literal["succeeded", "retrying", "failed"]
UploadOutcome = Literal["complete", "rejected", "expired"]
FilesRemovedReason = Literal["deleted", "expired"]


def set_jobs_by_status(counts: Mapping[str, int]) -> None:
    """Replaces the jobs-by-status gauge: statuses missing from `counts` drop to 0 rather than keep old values."""
    _job_statuses_seen.update(counts)
    for status in _job_statuses_seen:
        JOBS_BY_STATUS.labels(status).set(counts.get(status, 0))


def observe_job_finished(status: str, queue_wait_seconds: float | None, duration_seconds: float | None) -> None:
    """One job reached `status` (succeeded / failed / canceled); None for a wait or run that never happened."""
    JOBS_FINISHED.labels(status).inc()
    if queue_wait_seconds is not None:
        JOB_QUEUE_WAIT.observe(max(queue_wait_seconds, 0.0))
    if duration_seconds is not None:
        JOB_DURATION.labels(status).observe(max(duration_seconds, 0.0))


def record_credits(kind: CreditKind, amount: int) -> None:
    if amount > 0:
        CREDITS.labels(kind).inc(amount)


def record_webhook_delivery(outcome: DeliveryOutcome) -> None:
    WEBHOOK_DELIVERIES.labels(outcome).inc()


def record_upload(outcome: UploadOutcome, count: int = 1) -> None:
    if count > 0:
        UPLOADS.labels(outcome).inc(count)


def record_job_files_removed(reason: FilesRemovedReason) -> None:
    JOB_FILES_REMOVED.labels(reason).inc()


class _DomainCollector(Collector):
    def collect(self) -> Iterable[Metric]:
        return DOMAIN_REGISTRY.collect()


@dataclass(frozen=True)
class _RouteTemplate:
    path_regex: re.Pattern[str]
    methods: frozenset[str] | None
    template: str


class _RouteTemplates:
    """The app's routes flattened once into (regex, methods, template): the instrumentator resolves each request's
    route template by flattening and matching FastAPI's nested route contexts again, which cost as much CPU as the
    endpoint of a `GET /v1/jobs/{id}`. Same rule as the library: a full match wins, else the first path match."""

    def __init__(self, routes: list[BaseRoute]) -> None:
        table: list[_RouteTemplate] = []
        for route in _effective_routes(routes):
            regex, template = getattr(route, "path_regex", None), getattr(route, "path", None)
            if regex is None or template is None or getattr(route, "routes", None):  # a mount: the library recurses
                raise _UnsupportedRoutes
            methods = getattr(route, "methods", None)
            table.append(_RouteTemplate(regex, frozenset(methods) if methods else None, template))
        self.table = table

    def resolve(self, path: str, method: str) -> str | None:
        partial = None
        for route in self.table:
            if route.path_regex.match(path):
                if route.methods is None or method in route.methods:
                    return route.template
                partial = partial or route.template
        return partial


class _UnsupportedRoutes(Exception):
    pass


class _RouteTableInstrumentatorMiddleware(PrometheusInstrumentatorMiddleware):
    """prometheus-fastapi-instrumentator's middleware with the route template looked up in `_RouteTemplates`
    (built at the first request: routers are included after the middleware is installed)."""

    _templates: _RouteTemplates | None = None
    _unsupported = False

    def _get_handler(self, request: Request) -> tuple[str, bool]:
        if self._templates is None and not self._unsupported and not self.should_include_root_path:
            try:
                self._templates = _RouteTemplates(request.app.routes)
            except _UnsupportedRoutes:
                self._unsupported = True
        if self._templates is not None:
            template = self._templates.resolve(get_route_path(request.scope), request.method)
            if template is not None:
                return template, True
        return super()._get_handler(request)  # no route (a 404, a trailing-slash redirect) or a mounted app


def install_metrics(app: FastAPI) -> CollectorRegistry:
    """HTTP metrics for `app` and `GET /metrics` serving them with the domain metrics; returns the app's registry."""
    registry = CollectorRegistry()
    registry.register(_DomainCollector())
    Instrumentator(registry=registry, excluded_handlers=["/metrics"], should_group_untemplated=True).instrument(
        app
    ).expose(app, endpoint="/metrics", include_in_schema=False)
    # Same middleware and options, cheaper route lookup (the library's own class is the base).
    app.user_middleware = [
        Middleware(_RouteTableInstrumentatorMiddleware, *m.args, **m.kwargs)
        if m.cls is PrometheusInstrumentatorMiddleware
        else m
        for m in app.user_middleware
    ]
    return registry

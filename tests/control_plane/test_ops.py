"""Operations endpoints: /metrics (HTTP and domain metrics) and /readyz (database and Ray reachability)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable

from fastapi import FastAPI, Request
from fastapi.testclient import TestClient
from prometheus_fastapi_instrumentator.routing import get_route_name
from sqlalchemy import create_engine
from sqlalchemy.orm import Session, sessionmaker

from control_plane import metrics
from control_plane.app import create_app
from control_plane.config import Settings
from control_plane.credits import service as credits_service
from control_plane.db import create_session_factory
from tests.control_plane.conftest import TestUser, assert_error
from tests.control_plane.live_server import free_port, receiver


def _sample(text: str, name: str, labels: str = "") -> float:
    """The value of one sample in a Prometheus text exposition (0 if absent)."""
    pattern = re.escape(name) + (re.escape("{" + labels + "}") if labels else "") + r" ([0-9.e+-]+)\n"
    found = re.search(pattern, text)
    return float(found.group(1)) if found else 0.0


def test_metrics_expose_http_and_domain_metrics(
    client: TestClient, make_user: Callable[..., TestUser], session: Session
) -> None:
    user = make_user()
    before = client.get("/metrics").text
    assert client.get("/v1/credits", headers=user.headers).status_code == 200
    credits_service.grant(session, user.id, 100)
    reservation = credits_service.reserve(session, user.id, 30, "job-metrics")
    credits_service.capture(session, reservation.id, 12)
    metrics.set_jobs_by_status({"queued": 3, "running": 1})
    metrics.set_jobs_by_status({"running": 2})  # statuses that disappear drop to 0
    metrics.observe_job_finished("succeeded", queue_wait_seconds=4.0, duration_seconds=95.0)

    response = client.get("/metrics")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert 'http_requests_total{handler="/v1/credits",method="GET",status="2xx"}' in text
    assert "http_request_duration_seconds_bucket" in text
    assert _sample(text, "octavia_jobs", 'status="queued"') == 0
    assert _sample(text, "octavia_jobs", 'status="running"') == 2
    for name, labels, delta in (
        ("octavia_credits_total", 'kind="reserved"', 30),
        ("octavia_credits_total", 'kind="captured"', 12),
        ("octavia_credits_total", 'kind="released"', 18),
        ("octavia_jobs_finished_total", 'status="succeeded"', 1),
        ("octavia_job_queue_wait_seconds_count", "", 1),
        ("octavia_job_duration_seconds_count", 'status="succeeded"', 1),
    ):
        assert _sample(text, name, labels) - _sample(before, name, labels) == delta, name
    for name in ("octavia_webhook_deliveries_total", "octavia_uploads_total"):
        assert f"# TYPE {name} counter" in text
    assert "/metrics" not in client.get("/openapi.json").text


def test_http_metrics_label_requests_by_route_template(client: TestClient, make_user: Callable[..., TestUser]) -> None:
    user = make_user()
    job_id = "0b7e2c9a-3f1d-4e55-9a0e-1c2d3e4f5a6b"
    assert client.get(f"/v1/jobs/{job_id}", headers=user.headers).status_code == 404
    assert client.delete("/v1/credits", headers=user.headers).status_code == 405  # path matches, method does not
    assert client.get("/v1/no-such-thing", headers=user.headers).status_code == 404
    text = client.get("/metrics").text
    assert 'http_requests_total{handler="/v1/jobs/{job_id}",method="GET",status="4xx"} 1.0' in text
    assert 'http_requests_total{handler="/v1/credits",method="DELETE",status="4xx"} 1.0' in text
    assert 'http_requests_total{handler="none",method="GET",status="4xx"} 1.0' in text  # untemplated, grouped
    assert job_id not in text


def test_route_table_names_every_route_as_the_instrumentator_does(app: FastAPI) -> None:
    """`_RouteTemplates` (resolved once) against the library's own per-request lookup, for a path of every route
    under every method."""
    templates = metrics._RouteTemplates(app.routes)
    assert len(templates.table) > 40
    for route in templates.table:
        path = re.sub(r"\{[^}]+\}", "0b7e2c9a-3f1d-4e55-9a0e-1c2d3e4f5a6b", route.template)
        for method in ("GET", "POST", "DELETE", "PATCH", "HEAD", "OPTIONS"):
            scope = {"type": "http", "path": path, "root_path": "", "method": method, "app": app, "headers": []}
            expected = get_route_name(Request(scope), should_include_root_path=False)
            assert templates.resolve(path, method) == expected, (method, path)


def test_each_app_has_its_own_http_registry(settings: Settings, session_factory: sessionmaker[Session]) -> None:
    """Building apps over and over (tests, workers) never registers a metric name twice."""
    first, second = (TestClient(create_app(settings, session_factory=session_factory)) for _ in range(2))
    first.get("/healthz")
    first_text, second_text = first.get("/metrics").text, second.get("/metrics").text
    assert 'http_requests_total{handler="/healthz"' in first_text
    assert 'http_requests_total{handler="/healthz"' not in second_text
    assert "octavia_credits" in second_text  # the domain metrics are in every app's exposition


def test_readyz_ok_on_a_working_database_without_ray(client: TestClient) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200, response.text
    assert response.json() == {
        "status": "ok",
        "checks": {
            "database": {"status": "ok", "detail": None},
            "ray": {"status": "not_configured", "detail": "no OCTAVIA_RAY_ADDRESS: Ray runs embedded in the worker"},
        },
    }


def test_readyz_503_when_ray_is_unreachable(settings: Settings, session_factory: sessionmaker[Session]) -> None:
    unreachable = settings.model_copy(update={"ray_address": f"http://127.0.0.1:{free_port()}"})
    with TestClient(create_app(unreachable, session_factory=session_factory)) as client:
        error = assert_error(client.get("/readyz"), 503, "not_ready")
    checks = error["details"]["checks"]
    assert checks["database"]["status"] == "ok"
    assert checks["ray"]["status"] == "error" and "unreachable" in checks["ray"]["detail"]
    assert "ray" in error["message"]


def test_readyz_asks_the_ray_dashboard(settings: Settings, session_factory: sessionmaker[Session]) -> None:
    with receiver() as dashboard:
        dashboard.respond = lambda _r: (200, json.dumps({"version": "4", "ray_version": "2.60.0"}).encode())
        ray = settings.model_copy(update={"ray_address": dashboard.url})
        with TestClient(create_app(ray, session_factory=session_factory)) as client:
            response = client.get("/readyz")
    assert response.status_code == 200, response.text
    assert response.json()["checks"]["ray"] == {"status": "ok", "detail": "Ray 2.60.0"}
    assert [r.path for r in dashboard.requests] == ["/api/version"]


def test_readyz_503_when_the_database_is_down(settings: Settings) -> None:
    dead = create_engine(
        f"postgresql+psycopg://nobody@127.0.0.1:{free_port()}/none", connect_args={"connect_timeout": 2}
    )
    try:
        with TestClient(create_app(settings, session_factory=create_session_factory(dead))) as client:
            error = assert_error(client.get("/readyz"), 503, "not_ready")
            assert client.get("/healthz").status_code == 200  # alive, just not ready
    finally:
        dead.dispose()
    assert error["details"]["checks"]["database"]["status"] == "error"
    assert error["details"]["checks"]["ray"]["status"] == "not_configured"

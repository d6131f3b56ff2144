"""The dashboards are generated (the committed JSON is what grafana/dashboards.py makes) and every metric they query
is one the code exports: a renamed metric breaks this test, not an operator's dashboard."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from grafana.dashboards import DASHBOARDS, OUT, render

ROOT = Path(__file__).resolve().parents[2]
METRIC = re.compile(r"\b((?:ray_octavia|octavia|http)_[a-z_]+)\b")
SUFFIXES = {"counter": ("_total", "_created"), "histogram": ("_bucket", "_sum", "_count", "_created"), "gauge": ("",)}


def queried(name: str) -> set[str]:
    doc = json.loads((OUT / f"{name}.json").read_text())
    exprs = [t["expr"] for p in doc["panels"] for t in p.get("targets", [])]
    exprs += [t["query"] for t in doc["templating"]["list"] if t.get("type") == "query"]
    return {m for expr in exprs for m in METRIC.findall(expr)}


def control_plane_exports() -> set[str]:
    from fastapi.testclient import TestClient

    from control_plane.app import create_app
    from tests.control_plane.conftest import make_settings

    app = create_app(make_settings())
    with TestClient(app) as client:  # the HTTP metrics exist once the middleware has run
        assert client.get("/healthz").status_code == 200
    registry = app.state.metrics_registry
    names = set()
    for family in registry.collect():
        names |= {f"{family.name}{s}" for s in SUFFIXES.get(family.type, ("",))}
    return names


def serving_exports() -> set[str]:
    """Ray exports a custom metric `x` as `ray_x` (+ Prometheus suffixes)."""
    source = (ROOT / "serve_apps" / "common" / "metrics.py").read_text()
    names = set()
    for kind, name in re.findall(r"(Histogram|RayCounter)\(\s*\"([a-z_]+)\"", source):
        suffixes = SUFFIXES["histogram" if kind == "Histogram" else "counter"]
        names |= {f"ray_{name}{s}" for s in suffixes}
    return names


@pytest.mark.parametrize("name", sorted(DASHBOARDS))
def test_committed_json_is_generated(name):
    assert (OUT / f"{name}.json").read_text() == render(name), "run: python -m grafana.dashboards"


def test_serving_dashboard_queries_only_exported_metrics():
    used = queried("octavia-serving")
    assert {"ray_octavia_request_latency_seconds_bucket", "ray_octavia_audio_seconds_total"} <= used
    assert used <= serving_exports()


def test_control_plane_dashboard_queries_only_exported_metrics():
    used = queried("octavia-control-plane")
    assert {"octavia_jobs", "octavia_credits_total", "http_requests_total"} <= used
    assert used <= control_plane_exports()


def test_panels_do_not_overlap():
    for name in DASHBOARDS:
        cells = set()
        for panel in json.loads((OUT / f"{name}.json").read_text())["panels"]:
            g = panel["gridPos"]
            mine = {(x, y) for x in range(g["x"], g["x"] + g["w"]) for y in range(g["y"], g["y"] + g["h"])}
            assert not cells & mine, f"{name}: {panel['title']} overlaps"
            cells |= mine

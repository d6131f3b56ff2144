"""Octavia's Grafana dashboards, defined with grafanalib; `python -m grafana.dashboards` writes the JSON files in
grafana/dashboards/ (import them in Grafana, or mount them with its dashboard provisioning).

- octavia-serving: the Ray Serve applications (one row per question an operator asks: is it up, how fast, how
  much audio, are batches filling, what fails). Metrics come from serve_apps/common/metrics.py (Ray prefixes them
  `ray_`) and Serve's own.
- octavia-control-plane: the API (requests, latency, errors) and the business (jobs, credits, webhooks, uploads)
  from control_plane/metrics.py.

tests/grafana/test_dashboards.py checks that the committed JSON is what this file generates and that every
metric a panel queries is one the code exports.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from grafanalib._gen import DashboardEncoder
from grafanalib.core import (
    Dashboard,
    GridPos,
    RowPanel,
    Target,
    Template,
    Templating,
    TimeSeries,
)

OUT = Path(__file__).resolve().parent / "dashboards"
DATASOURCE = "${datasource}"
_WIDTH = 12
_HEIGHT = 8


def _datasource_variable() -> Template:
    return Template(name="datasource", query="prometheus", type="datasource", label="Data source", default="")


def _grid(panels: list[tuple[str, list[TimeSeries]]]) -> list[object]:
    """Rows of two panels each, laid out top to bottom."""
    out: list[object] = []
    y = 0
    for title, row in panels:
        out.append(RowPanel(title=title, gridPos=GridPos(h=1, w=24, x=0, y=y)))
        y += 1
        for i, panel in enumerate(row):
            panel.gridPos = GridPos(h=_HEIGHT, w=_WIDTH, x=(i % 2) * _WIDTH, y=y + (i // 2) * _HEIGHT)
            out.append(panel)
        y += ((len(row) + 1) // 2) * _HEIGHT
    return out


def _series(title: str, unit: str, *queries: tuple[str, str], description: str = "") -> TimeSeries:
    return TimeSeries(
        title=title,
        description=description,
        dataSource=DATASOURCE,
        unit=unit,
        targets=[Target(expr=expr, legendFormat=legend, refId=chr(65 + i)) for i, (expr, legend) in enumerate(queries)],
    )


def serving() -> Dashboard:
    app = 'application=~"$application"'
    quantile = (
        "histogram_quantile({q}, sum by (application, le) "
        "(rate(ray_octavia_request_latency_seconds_bucket{{{s}}}[5m])))"
    )
    panels = [
        ("Replicas", [
            _series("Healthy replicas", "short",
                    (f"sum by (application) (ray_serve_deployment_replica_healthy{{{app}}})", "{{application}}")),
            _series("Requests / s", "reqps",
                    (f"sum by (application) (rate(ray_octavia_request_latency_seconds_count{{{app}}}[5m]))",
                     "{{application}}")),
        ]),
        ("Latency", [
            _series("p50 latency", "s", (quantile.format(q=0.5, s=app), "{{application}}")),
            _series("p95 latency", "s", (quantile.format(q=0.95, s=app), "{{application}}"),
                    description="Batch waiting included."),
        ]),
        ("Work", [
            _series("Audio seconds processed / s", "short",
                    (f"sum by (application, method) (rate(ray_octavia_audio_seconds_total{{{app}}}[5m]))",
                     "{{application}} {{method}}"),
                    description="Above 1: the application keeps up with real time."),
            _series("Mean batch size", "short",
                    (f"sum by (application, method) (rate(ray_octavia_batch_size_sum{{{app}}}[5m])) / "
                     f"sum by (application, method) (rate(ray_octavia_batch_size_count{{{app}}}[5m]))",
                     "{{application}} {{method}}")),
        ]),
        ("Errors", [
            _series("Errors / s by code", "reqps",
                    (f"sum by (application, code) (rate(ray_octavia_request_errors_total{{{app}}}[5m]))",
                     "{{application}} {{code}}")),
            _series("Multiplexed models loaded", "short",
                    (f"sum by (application) (ray_serve_num_multiplexed_models{{{app}}})", "{{application}}")),
        ]),
    ]  # fmt: skip
    application = Template(
        name="application",
        label="Application",
        dataSource=DATASOURCE,
        query="label_values(ray_octavia_request_latency_seconds_count, application)",
        includeAll=True,
        multi=True,
        default="$__all",
    )
    return Dashboard(
        title="Octavia — model serving",
        uid="octavia-serving",
        tags=["octavia", "ray-serve"],
        timezone="browser",
        refresh="30s",
        templating=Templating(list=[_datasource_variable(), application]),
        panels=_grid(panels),
    ).auto_panel_ids()


def control_plane() -> Dashboard:
    panels = [
        ("API", [
            _series("Requests / s by status", "reqps",
                    ("sum by (status) (rate(http_requests_total[5m]))", "{{status}}")),
            _series("p99 latency by route", "s",
                    ("histogram_quantile(0.99, sum by (handler, le) (rate(http_request_duration_seconds_bucket[5m])))",
                     "{{handler}}")),
        ]),
        ("Jobs", [
            _series("Jobs by status", "short", ("sum by (status) (octavia_jobs)", "{{status}}")),
            _series("Finished jobs / h", "short",
                    ("sum by (status) (increase(octavia_jobs_finished_total[1h]))", "{{status}}")),
            _series("Queue wait p95", "s",
                    ("histogram_quantile(0.95, sum by (le) (rate(octavia_job_queue_wait_seconds_bucket[15m])))",
                     "p95")),
            _series("Job duration p95", "s",
                    ("histogram_quantile(0.95, sum by (status, le) (rate(octavia_job_duration_seconds_bucket[1h])))",
                     "{{status}}")),
        ]),
        ("Money and delivery", [
            _series("Credits / h", "short", ("sum by (kind) (increase(octavia_credits_total[1h]))", "{{kind}}"),
                    description="reserved (held), captured (charged), released (given back)"),
            _series("Webhook deliveries / h", "short",
                    ("sum by (outcome) (increase(octavia_webhook_deliveries_total[1h]))", "{{outcome}}")),
            _series("Uploads / h", "short", ("sum by (outcome) (increase(octavia_uploads_total[1h]))", "{{outcome}}")),
            _series("Job folders removed / h", "short",
                    ("sum by (reason) (increase(octavia_job_files_removed_total[1h]))", "{{reason}}"),
                    description="deleted (the user deleted the job), expired (OCTAVIA_JOBS_ARTIFACT_RETENTION_DAYS)"),
        ]),
    ]  # fmt: skip
    return Dashboard(
        title="Octavia — control plane",
        uid="octavia-control-plane",
        tags=["octavia"],
        timezone="browser",
        refresh="30s",
        templating=Templating(list=[_datasource_variable()]),
        panels=_grid(panels),
    ).auto_panel_ids()


DASHBOARDS = {"octavia-serving": serving, "octavia-control-plane": control_plane}


def render(name: str) -> str:
    return json.dumps(DASHBOARDS[name]().to_json_data(), cls=DashboardEncoder, indent=2, sort_keys=True) + "\n"


def main() -> int:
    OUT.mkdir(exist_ok=True)
    for name in DASHBOARDS:
        (OUT / f"{name}.json").write_text(render(name))
        print(f"wrote {OUT / f'{name}.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Jobs through a REAL local Ray cluster (head with the dashboard, Jobs API): the control plane under uvicorn, the
reconciler with `RayJobRunner`, and an entrypoint that speaks the pipeline's protocol — `fake_pipeline_job.py` here,
`python -m pipeline.job` once it runs on this machine (`run_through_ray` takes the entrypoint as a parameter).

Checked end to end: submission with metadata and the token only in the runtime environment, progress posted by
the Ray job to the real server, SSE following it, success → the measured duration charged and the rest released,
artifacts downloadable with Range; a reported failure → everything released, not retried, `job.failed` delivered
to a webhook receiver; a crash without a report → retried, then failed.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2
import pytest
from sqlalchemy import Engine, delete
from sqlalchemy.orm import Session, sessionmaker

from control_plane.app import create_app
from control_plane.auth import tokens
from control_plane.auth.tokens import TokenKind
from control_plane.config import Settings
from control_plane.credits.models import EntryKind
from control_plane.db import create_session_factory, utcnow
from control_plane.jobs.models import Job
from control_plane.jobs.ray_runner import RayJobRunner
from control_plane.jobs.reconciler import Reconciler
from control_plane.uploads.models import Upload
from control_plane.users.models import User
from tests.control_plane.conftest import PASSWORD_HASH, TestUser, make_settings
from tests.control_plane.jobs_support import (
    MEDIA_BYTES,
    assert_ledger_consistent,
    count_entries,
    fund,
    job_body,
    make_upload,
)
from tests.control_plane.live_server import free_port, json_body, receiver, serve_app

pytestmark = pytest.mark.slow

FAKE_PIPELINE = Path(__file__).with_name("fake_pipeline_job.py")
STAND_IN = f"{sys.executable} {FAKE_PIPELINE}"
# The real dub: stages in the Ray job's own process by default; e.g. `... -m pipeline.job --deploy` runs them on
# Ray Serve + Ray Data in the test cluster instead (slower: it deploys every model family first).
REAL_PIPELINE = os.environ.get(
    "OCTAVIA_TEST_PIPELINE_ENTRYPOINT", f"{sys.executable} -m pipeline.job --local --parallelism 1"
)

# A Ray head with the dashboard (Jobs API) in a child process; closing its stdin shuts it down with everything
# it started (never `ray stop`, which would kill every Ray on the machine).
HEAD = """
import sys, ray
ray.init(include_dashboard=True, dashboard_host="127.0.0.1", dashboard_port=int(sys.argv[1]), num_cpus=2,
         logging_level="WARNING", _temp_dir=sys.argv[2])
print("READY", flush=True)
sys.stdin.read()
ray.shutdown()
"""


@pytest.fixture(scope="module")
def ray_dashboard() -> Iterator[str]:
    port = free_port()
    temp_dir = tempfile.mkdtemp(prefix="rj", dir="/tmp")  # short: Ray's socket paths have a length limit
    env = {**os.environ, "RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0"}
    head = subprocess.Popen(
        [sys.executable, "-c", HEAD, str(port), temp_dir],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    lines: list[str] = []
    ready = threading.Event()

    def read() -> None:
        assert head.stdout is not None
        for line in head.stdout:
            lines.append(line)
            if line.startswith("READY"):
                ready.set()

    threading.Thread(target=read, daemon=True).start()
    try:
        if not ready.wait(120):
            pytest.fail("the Ray head did not start:\n" + "".join(lines[-40:]))
        url = f"http://127.0.0.1:{port}"
        _warm_up(url)
        yield url
    finally:
        assert head.stdin is not None
        head.stdin.close()
        try:
            head.wait(60)
        except subprocess.TimeoutExpired:
            head.kill()
            head.wait(10)
        shutil.rmtree(temp_dir, ignore_errors=True)


def _warm_up(url: str) -> None:
    """Runs one trivial job, so the job agent and runtime-env agent are up before the timed tests."""
    from ray.job_submission import JobSubmissionClient

    client = JobSubmissionClient(url)
    deadline = time.monotonic() + 90
    while True:  # the dashboard answers before its job agent has registered ("No available agent")
        try:
            submission = client.submit_job(entrypoint=f"{sys.executable} -c pass")
            break
        except RuntimeError as exc:
            if "No available agent" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.5)
    while not client.get_job_status(submission).is_terminal():
        assert time.monotonic() < deadline, "warm-up job did not finish"
        time.sleep(0.3)


@dataclass
class LiveRay:
    """The control plane under uvicorn on committed connections, a funded user, and the Ray dashboard's URL."""

    base_url: str
    dashboard: str
    factory: sessionmaker[Session]
    settings: Settings
    user: TestUser

    def add_upload(self, source: Path | None = None, duration: float = 90.0) -> Upload:
        """A complete upload; `source` (real media, for the real pipeline) replaces the stand-in bytes."""
        with self.factory.begin() as session:
            upload = make_upload(session, self.settings, self.user.id, duration=duration)
            if source is not None:
                shutil.copyfile(source, upload.storage_path)
                upload.length = upload.offset = Path(upload.storage_path).stat().st_size
        return upload


@pytest.fixture
def live_ray(ray_dashboard: str, db_engine: Engine, tmp_path: Path) -> Iterator[LiveRay]:
    factory = create_session_factory(db_engine)
    settings = make_settings(data_dir=tmp_path, jobs_max_attempts=2)
    with factory.begin() as session:
        row = User(email=f"ray-{uuid.uuid4().hex[:10]}@example.com", password_hash=PASSWORD_HASH)
        row.email_verified_at = utcnow()
        session.add(row)
        session.flush()
        fund(session, row.id, 100)
    user = TestUser(row, {"Authorization": f"Bearer {tokens.issue(settings, TokenKind.ACCESS, row.id)}"})
    try:
        with serve_app(create_app(settings, session_factory=factory)) as base_url:
            yield LiveRay(base_url, ray_dashboard, factory, settings, user)
    finally:
        with factory.begin() as session:
            session.execute(delete(User).where(User.id == row.id))


@dataclass
class RayRun:
    job: dict[str, Any]
    events: list[tuple[str, dict[str, Any]]]
    submissions: list[str]


def run_through_ray(
    live: LiveRay, entrypoint: str, upload: Upload, targets: list[str], *, timeout_seconds: float = 90.0
) -> RayRun:
    """Creates a job over HTTP and ticks a reconciler driving `RayJobRunner(entrypoint)` until the job is final,
    while an SSE client follows the job's events."""
    settings = live.settings.model_copy(update={"internal_url": live.base_url})
    runner = RayJobRunner(live.dashboard, entrypoint, timeout_seconds=10)
    reconciler = Reconciler(settings, live.factory, runner)
    http = httpx2.Client(base_url=live.base_url, timeout=20)
    created = http.post("/v1/jobs", json=job_body(upload, *targets), headers=live.user.headers)
    assert created.status_code == 201, created.text
    job_id = created.json()["id"]

    events: list[tuple[str, dict[str, Any]]] = []

    def follow() -> None:
        with (
            httpx2.Client(base_url=live.base_url, timeout=timeout_seconds) as own,
            own.stream("GET", f"/v1/jobs/{job_id}/events", headers=live.user.headers) as response,
        ):
            kind = ""
            for line in response.iter_lines():
                if line.startswith("event:"):
                    kind = line.partition(":")[2].strip()
                elif line.startswith("data:"):
                    events.append((kind, json.loads(line.partition(":")[2])))

    follower = threading.Thread(target=follow, daemon=True)
    follower.start()
    submissions: list[str] = []
    deadline = time.monotonic() + timeout_seconds
    while True:
        reconciler.tick()
        job = http.get(f"/v1/jobs/{job_id}", headers=live.user.headers).json()
        with live.factory() as session:
            row = session.get(Job, uuid.UUID(job_id))
            if row is not None and row.ray_job_id and row.ray_job_id not in submissions:
                submissions.append(row.ray_job_id)
        if job["status"] in ("succeeded", "failed", "canceled"):
            break
        assert time.monotonic() < deadline, f"job still {job['status']} ({job['stage']}) after {timeout_seconds} s"
        time.sleep(0.3)
    reconciler.tick()  # deliver the webhook queued by the finish
    follower.join(10)
    assert not follower.is_alive(), "the event stream did not end with the job"
    http.close()
    return RayRun(job=job, events=events, submissions=submissions)


def test_a_job_runs_end_to_end_through_ray(live_ray: LiveRay) -> None:
    from ray.job_submission import JobSubmissionClient

    upload = live_ray.add_upload(duration=90.0)  # reserve: 2 started minutes x 2 languages x 10 = 40
    with receiver() as hook:
        endpoint = httpx2.post(
            f"{live_ray.base_url}/v1/webhook-endpoints", json={"url": hook.url}, headers=live_ray.user.headers
        )
        assert endpoint.status_code == 201
        run = run_through_ray(live_ray, STAND_IN, upload, ["es", "pt"])
        deliveries = [json_body(r) for r in hook.requests]

    job = run.job
    assert job["status"] == "succeeded", job
    assert job["media_duration"] == 50.0 and job["charged_credits"] == 20  # measured: 1 minute x 2 x 10
    with live_ray.factory() as session:
        assert assert_ledger_consistent(session, live_ray.user.id) == (80, 0)
        assert count_entries(session, live_ray.user.id, EntryKind.CAPTURE) == 1

    (submission,) = run.submissions
    assert submission == f"octavia-job-{uuid.UUID(job['id']).hex}-1"
    info = JobSubmissionClient(live_ray.dashboard).get_job_info(submission)
    assert str(info.status) == "SUCCEEDED"
    assert info.metadata is not None and info.metadata["job_id"] == job["id"]
    assert info.metadata["user_id"] == str(live_ray.user.id) and "octavia dub" in info.metadata["job_name"]
    assert "--progress-url" in info.entrypoint and "OCTAVIA_PROGRESS_TOKEN" not in info.entrypoint

    statuses = [data["status"] for kind, data in run.events if kind == "status"]
    stages = [data["stage"] for kind, data in run.events if kind == "progress"]
    assert statuses == ["queued", "running", "succeeded"]
    assert stages == ["analyze", "synthesize:es", "done"]

    http = httpx2.Client(base_url=live_ray.base_url, headers=live_ray.user.headers)
    listed = http.get(f"/v1/jobs/{job['id']}/artifacts").json()["items"]
    assert sorted(a["name"] for a in listed) == sorted(
        f"{upload.id}.{lang}.{ext}" for lang in ("es", "pt") for ext in ("mp4", "srt")
    )
    part = http.get(f"/v1/jobs/{job['id']}/artifacts/{upload.id}.pt.mp4", headers={"Range": "bytes=100-199"})
    assert part.status_code == 206 and part.content == MEDIA_BYTES[100:200]
    assert part.headers["content-disposition"].startswith("attachment;")
    http.close()

    assert [d["type"] for d in deliveries] == ["job.succeeded"]
    assert deliveries[0]["data"]["job_id"] == job["id"] and deliveries[0]["data"]["charged_credits"] == 20


def test_a_failed_run_releases_everything_and_notifies(live_ray: LiveRay) -> None:
    upload = live_ray.add_upload(duration=90.0)
    with receiver() as hook:
        endpoint = httpx2.post(
            f"{live_ray.base_url}/v1/webhook-endpoints",
            json={"url": hook.url, "event_types": ["job.failed"]},
            headers=live_ray.user.headers,
        )
        assert endpoint.status_code == 201
        run = run_through_ray(live_ray, f"{STAND_IN} --mode fail", upload, ["es"])
        crashed = run_through_ray(live_ray, f"{STAND_IN} --mode crash", upload, ["pt"])
        deliveries = [json_body(r) for r in hook.requests]

    assert run.job["status"] == "failed"
    assert run.job["error"] == {"code": "unsupported_language_pair", "message": "no translation model for en->es"}
    assert len(run.submissions) == 1  # a failure the pipeline reports is not retried

    assert crashed.job["status"] == "failed" and crashed.job["error"]["code"] == "infrastructure_error"
    assert len(crashed.submissions) == 2 and crashed.submissions[1].endswith("-2")  # OCTAVIA_JOBS_MAX_ATTEMPTS=2

    with live_ray.factory() as session:
        assert assert_ledger_consistent(session, live_ray.user.id) == (100, 0)
        assert count_entries(session, live_ray.user.id, EntryKind.CAPTURE) == 0
    assert sorted((d["type"], d["data"]["job_id"]) for d in deliveries) == sorted(
        [("job.failed", run.job["id"]), ("job.failed", crashed.job["id"])]
    )


@pytest.fixture(scope="module")
def spoken_clip(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, float]:
    """6 s: two English lines by two offline TTS voices over music, on a test picture."""
    from pipeline.media.probe import probe_media
    from pipeline.samples import CONVERSATION, make_conversation

    path = tmp_path_factory.mktemp("media") / "talk.mp4"
    make_conversation(path, lines=CONVERSATION[:2])
    return path, probe_media(path).duration


def test_the_real_pipeline_runs_through_ray(
    live_ray: LiveRay, db_backend: str, spoken_clip: tuple[Path, float]
) -> None:
    """`python -m pipeline.job` itself as the Ray job (`REAL_PIPELINE`)."""
    if db_backend != "sqlite":
        pytest.skip("one real dub is enough: the control-plane side runs on both databases with the stand-in")
    source, duration = spoken_clip
    upload = live_ray.add_upload(source, duration=duration)
    run = run_through_ray(live_ray, REAL_PIPELINE, upload, ["es"], timeout_seconds=600)
    job = run.job
    assert job["status"] == "succeeded", job
    assert job["options"]["profile"] == "auto" and job["media_duration"] == pytest.approx(duration, abs=0.2)
    assert job["charged_credits"] == 10  # 1 started minute x 1 language x 10
    assert job["warnings"] == []  # the source language was detected: nothing to doubt
    with live_ray.factory() as session:
        assert assert_ledger_consistent(session, live_ray.user.id) == (90, 0)
    stages = [data["stage"] for kind, data in run.events if kind == "progress"]
    assert stages[-1] == "done" and len(stages) >= 3
    assert [data["status"] for kind, data in run.events if kind == "status"] == ["queued", "running", "succeeded"]

    http = httpx2.Client(base_url=live_ray.base_url, headers=live_ray.user.headers)
    listed = {a["name"]: a for a in http.get(f"/v1/jobs/{job['id']}/artifacts").json()["items"]}
    video = listed[f"{upload.id}.es.mp4"]
    assert video["kind"] == "video" and video["size"] > 10_000
    assert {a["kind"] for a in listed.values()} >= {"video", "subtitles", "transcript"}
    head = http.get(f"/v1/jobs/{job['id']}/artifacts/{video['name']}", headers={"Range": "bytes=0-11"})
    assert head.status_code == 206 and head.content[4:8] == b"ftyp"  # an MP4 file
    http.close()

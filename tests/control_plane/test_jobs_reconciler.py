"""The jobs reconciler against a fake Ray (`FakeRunner`, the `JobRunner` test double): what it submits, how Ray's
states map to job states, credits on every outcome (ledger sum == balance after each), retries of infrastructure
failures, cancel → stop, stale runs, crashes at every step followed by a new reconciler (no double submission, no
double charge), the webhook/upload housekeeping, and the worker running in the app's lifespan."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx2
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Connection, Engine, delete, select
from sqlalchemy.orm import Session, sessionmaker
from standardwebhooks.webhooks import Webhook

from control_plane.app import create_app
from control_plane.auth import tokens
from control_plane.auth.tokens import TokenKind
from control_plane.config import Settings
from control_plane.credits.models import EntryKind
from control_plane.db import create_session_factory, utcnow
from control_plane.jobs import service
from control_plane.jobs.models import Job
from control_plane.jobs.ray_runner import RayJobState
from control_plane.jobs.reconciler import SUBMIT_GRACE, Reconciler
from control_plane.uploads.models import Upload, UploadStatus
from control_plane.users.models import User
from control_plane.webhooks.models import WebhookEvent
from tests.control_plane.conftest import PASSWORD_HASH, TestUser, assert_error, make_settings
from tests.control_plane.jobs_support import (
    FakeRunner,
    Harness,
    SimulatedCrash,
    argument,
    assert_ledger_consistent,
    bearer,
    count_entries,
    fund,
    job_body,
    make_harness,
    make_upload,
    write_outputs,
)
from tests.control_plane.live_server import json_body, receiver, serve_app


@pytest.fixture
def harness(
    client: TestClient, session: Session, settings: Settings, session_factory: sessionmaker[Session]
) -> Harness:
    return make_harness(client, session, settings, session_factory)


@pytest.fixture
def user(make_user: Callable[..., TestUser], session: Session) -> TestUser:
    made = make_user()
    fund(session, made.id, 100)
    return made


def _job(session: Session, job_id: str) -> Job:
    session.expire_all()
    job = session.get(Job, uuid.UUID(job_id))
    assert job is not None
    return job


def _events(session: Session, user_id: uuid.UUID) -> list[WebhookEvent]:
    session.expire_all()
    return list(session.scalars(select(WebhookEvent).where(WebhookEvent.user_id == user_id)))


# --- the happy path and the credits --------------------------------------------------------------------------------


def test_a_successful_run_is_charged_for_the_measured_duration(
    harness: Harness, user: TestUser, session: Session, settings: Settings
) -> None:
    upload = make_upload(session, settings, user.id, duration=90.0)  # estimate: 2 min x 2 languages x 10 = 40
    job = harness.create(user, upload, "es", "pt", options={"burn_subtitles": True, "speakers": 3})
    assert harness.tick().submitted == 1
    spec = harness.spec(job["id"])
    job_hex = uuid.UUID(job["id"]).hex
    assert spec.submission_id == f"octavia-job-{job_hex}-1" == harness.runner.submissions[0]
    assert argument(spec, "--input") == upload.storage_path
    assert argument(spec, "--to") == "es,pt" and argument(spec, "--from") == "auto"
    assert argument(spec, "--out") == str(settings.data_dir / "jobs" / job_hex / "out")
    assert argument(spec, "--speakers") == "3" and "--burn-subtitles" in spec.arguments
    assert "--keep-original-audio" not in spec.arguments
    assert argument(spec, "--progress-url") == f"http://127.0.0.1:8001/internal/jobs/{job['id']}/progress"
    assert dict(spec.metadata) | {"job_name": ""} == {"job_id": job["id"], "user_id": str(user.id), "job_name": ""}
    assert harness.get(user, job["id"])["stage"] == "submitted"
    assert harness.tick().submitted == 0  # PENDING on Ray: nothing new
    assert harness.get(user, job["id"])["status"] == "queued"

    harness.runner.set(spec.submission_id, RayJobState.RUNNING)
    harness.tick()
    running = harness.get(user, job["id"])
    assert running["status"] == "running" and running["started_at"] is not None
    harness.progress(job["id"], spec, stage="synthesize:es", progress=55.5, eta_seconds=12.0)
    running = harness.get(user, job["id"])
    assert (running["stage"], running["progress"], running["eta_seconds"]) == ("synthesize:es", 55.5, 12.0)

    write_outputs(spec, upload.id, ["es", "pt"])
    assert running["warnings"] == []
    doubt = "the source was given as 'es' but the speech sounds like 'en' (94% sure): ..."
    final = harness.progress(job["id"], spec, stage="done", progress=100.0, status="succeeded", media_duration=50.0,
                             warnings=[doubt])  # fmt: skip
    assert final.json()["accepted"] is True
    assert harness.get(user, job["id"])["status"] == "running"  # finished when Ray says the process ended
    harness.runner.set(spec.submission_id, RayJobState.SUCCEEDED)
    assert harness.tick().finished == 1

    done = harness.get(user, job["id"])
    assert done["status"] == "succeeded" and done["progress"] == 100 and done["stage"] == "done"
    assert done["charged_credits"] == 20 and done["media_duration"] == 50.0  # 1 started minute x 2 x 10
    assert done["warnings"] == [doubt]
    assert assert_ledger_consistent(session, user.id) == (80, 0)
    assert count_entries(session, user.id, EntryKind.CAPTURE) == 1
    (event,) = _events(session, user.id)
    assert event.type == "job.succeeded"
    assert (
        event.payload["data"]["charged_credits"] == 20 and f"{upload.id}.es.mp4" in event.payload["data"]["artifacts"]
    )
    # The customer learns from the event until when the files can be downloaded (the default 30 days).
    expires = datetime.fromisoformat(done["finished_at"]) + timedelta(days=30)
    assert datetime.fromisoformat(event.payload["data"]["artifacts_expire_at"]) == expires
    assert datetime.fromisoformat(done["artifacts_expire_at"]) == expires

    late = harness.progress(job["id"], spec, stage="analyze", progress=3.0)
    assert late.status_code == 401  # the run's token died with it
    assert harness.tick().polled == 0 and harness.runner.submissions == [spec.submission_id]
    assert assert_ledger_consistent(session, user.id) == (80, 0)


def test_without_a_measured_duration_the_upload_duration_is_charged(
    harness: Harness, user: TestUser, session: Session, settings: Settings
) -> None:
    upload = make_upload(session, settings, user.id, duration=130.0)  # 3 started minutes
    job = harness.create(user, upload, "es")
    harness.succeed(user, job["id"], upload, media_duration=None)
    assert harness.get(user, job["id"])["charged_credits"] == 30
    assert assert_ledger_consistent(session, user.id) == (70, 0)


def test_a_failure_the_pipeline_reports_is_final_and_releases_everything(
    harness: Harness, user: TestUser, session: Session, settings: Settings
) -> None:
    upload = make_upload(session, settings, user.id)
    job = harness.create(user, upload, "es")
    spec = harness.start(job["id"])
    error = {"code": "unsupported_language_pair", "message": "no model for en->es; available: en->pt"}
    harness.progress(job["id"], spec, stage="done", status="failed", error=error)
    harness.runner.set(spec.submission_id, RayJobState.FAILED, "exit code 2")
    harness.tick()
    failed = harness.get(user, job["id"])
    assert failed["status"] == "failed" and failed["error"] == error
    assert harness.runner.submissions == [spec.submission_id]  # bad input is not retried
    assert assert_ledger_consistent(session, user.id) == (100, 0)
    assert count_entries(session, user.id, EntryKind.CAPTURE) == 0
    (event,) = _events(session, user.id)
    assert event.type == "job.failed" and event.payload["data"]["error"] == error


def test_infrastructure_failures_are_retried_a_bounded_number_of_times(
    harness: Harness, user: TestUser, session: Session, settings: Settings
) -> None:
    settings.jobs_max_attempts = 3
    upload = make_upload(session, settings, user.id)
    job = harness.create(user, upload, "es")
    first = harness.start(job["id"])
    harness.progress(job["id"], first, stage="analyze", progress=30.0)
    harness.runner.set(first.submission_id, RayJobState.FAILED, "node died")  # no report from the pipeline
    assert harness.tick().retried == 1
    second = harness.spec(job["id"])
    assert second.submission_id.endswith("-2") and second.env != first.env
    retrying = harness.get(user, job["id"])
    assert retrying["status"] == "running" and retrying["attempts"] == 2 and retrying["progress"] == 0
    assert harness.progress(job["id"], first, stage="analyze", progress=90.0).status_code == 401  # old token

    harness.runner.set(second.submission_id, RayJobState.SUCCEEDED)  # exit 0 but no outputs: shared storage?
    assert harness.tick().retried == 1
    third = harness.spec(job["id"])
    harness.runner.set(third.submission_id, RayJobState.FAILED, "raylet OOM")
    harness.tick()
    failed = harness.get(user, job["id"])
    assert failed["status"] == "failed" and failed["error"]["code"] == "infrastructure_error"
    assert "raylet OOM" in failed["error"]["message"] and "3 attempts" in failed["error"]["message"]
    assert len(harness.runner.submissions) == 3
    assert assert_ledger_consistent(session, user.id) == (100, 0)


def test_a_job_the_cluster_lost_is_resubmitted_and_a_stale_one_is_stopped_and_retried(
    harness: Harness, user: TestUser, session: Session, settings: Settings
) -> None:
    upload = make_upload(session, settings, user.id)
    lost = harness.create(user, upload, "es")
    spec = harness.start(lost["id"])
    del harness.runner.jobs[spec.submission_id]  # the Ray head restarted and forgot it
    harness.tick()
    assert harness.spec(lost["id"]).submission_id.endswith("-2")

    stale = harness.create(user, upload, "pt")
    stale_spec = harness.start(stale["id"])
    assert harness.tick(utcnow() + timedelta(seconds=settings.jobs_stale_seconds - 60)).retried == 0
    report = harness.tick(utcnow() + timedelta(seconds=settings.jobs_stale_seconds + 60))
    assert report.retried == 1 and stale_spec.submission_id in harness.runner.stops
    assert harness.runner.jobs[stale_spec.submission_id].state is RayJobState.STOPPED
    assert harness.spec(stale["id"]).submission_id.endswith("-2")


def test_cancel_stops_the_ray_job_then_cancels_and_releases(
    harness: Harness, user: TestUser, session: Session, settings: Settings
) -> None:
    upload = make_upload(session, settings, user.id)
    job = harness.create(user, upload, "es")
    spec = harness.start(job["id"])
    response = harness.client.post(f"/v1/jobs/{job['id']}/cancel", headers=user.headers)
    assert response.status_code == 202
    assert response.json()["status"] == "running" and response.json()["cancel_requested"] is True
    ack = harness.progress(job["id"], spec, stage="analyze", progress=20.0).json()
    assert ack == {"accepted": True, "status": "running", "cancel_requested": True}
    assert harness.client.post(f"/v1/jobs/{job['id']}/cancel", headers=user.headers).status_code == 202

    harness.tick()
    assert harness.runner.stops == [spec.submission_id]
    canceled = harness.get(user, job["id"])
    assert canceled["status"] == "canceled" and canceled["error"] is None
    assert assert_ledger_consistent(session, user.id) == (100, 0)
    assert [e.type for e in _events(session, user.id)] == ["job.canceled"]


def test_a_cancel_racing_a_success_still_cancels_without_charge(
    harness: Harness, user: TestUser, session: Session, settings: Settings
) -> None:
    upload = make_upload(session, settings, user.id)
    job = harness.create(user, upload, "es")
    spec = harness.start(job["id"])
    write_outputs(spec, upload.id, ["es"])
    harness.runner.set(spec.submission_id, RayJobState.SUCCEEDED)
    harness.client.post(f"/v1/jobs/{job['id']}/cancel", headers=user.headers)
    harness.tick()
    assert harness.get(user, job["id"])["status"] == "canceled"
    assert assert_ledger_consistent(session, user.id) == (100, 0)


def test_no_more_than_the_configured_jobs_run_at_once(
    harness: Harness, user: TestUser, session: Session, settings: Settings
) -> None:
    settings.jobs_max_running = 1
    upload = make_upload(session, settings, user.id)
    first, second = harness.create(user, upload, "es"), harness.create(user, upload, "pt")
    assert harness.tick().submitted == 1 and harness.tick().submitted == 0
    assert harness.get(user, second["id"])["stage"] is None
    harness.succeed(user, first["id"], upload)
    harness.tick()
    assert harness.get(user, second["id"])["stage"] == "submitted"
    assert len(harness.runner.submissions) == 2


def test_an_unreachable_cluster_leaves_jobs_queued_and_loses_nothing(
    harness: Harness, user: TestUser, session: Session, settings: Settings
) -> None:
    upload = make_upload(session, settings, user.id)
    job = harness.create(user, upload, "es")
    harness.runner.unavailable = True
    report = harness.tick()
    assert report.unavailable == 1 and report.submitted == 0
    assert harness.get(user, job["id"])["status"] == "queued"
    harness.runner.unavailable = False
    assert harness.tick().submitted == 0  # within the grace period the recorded attempt may still be in flight
    assert harness.tick(utcnow() + SUBMIT_GRACE + timedelta(seconds=1)).submitted == 1
    assert harness.runner.submissions == [f"octavia-job-{uuid.UUID(job['id']).hex}-1"]


# --- crashes: a new reconciler converges, never submits or charges twice ----------------------------------------


def _restarted(harness: Harness, connection: Connection) -> Harness:
    """The control plane after a crash: new session factory and reconciler, same database and Ray cluster."""
    factory = sessionmaker(bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False)
    harness.reconciler = Reconciler(harness.settings, factory, harness.runner)
    return harness


@pytest.mark.parametrize("when", ["before", "after"])
def test_a_crash_around_the_submission_never_submits_twice(
    when: str, harness: Harness, user: TestUser, session: Session, settings: Settings, connection: Connection
) -> None:
    upload = make_upload(session, settings, user.id)
    job = harness.create(user, upload, "es")
    harness.runner.crash_on_submit = when
    with pytest.raises(SimulatedCrash):
        harness.tick()
    expected_id = f"octavia-job-{uuid.UUID(job['id']).hex}-1"
    assert _job(session, job["id"]).ray_job_id == expected_id  # the attempt was committed first

    restarted = _restarted(harness, connection)
    restarted.tick()
    restarted.tick(utcnow() + SUBMIT_GRACE + timedelta(seconds=1))
    assert restarted.runner.submissions == [expected_id]
    spec = restarted.spec(job["id"])
    restarted.runner.set(expected_id, RayJobState.RUNNING)
    restarted.tick()
    assert restarted.progress(job["id"], spec, stage="analyze", progress=10.0).status_code == 200
    write_outputs(spec, upload.id, ["es"])
    restarted.runner.set(expected_id, RayJobState.SUCCEEDED)
    restarted.tick()
    assert restarted.get(user, job["id"])["status"] == "succeeded"
    assert restarted.runner.submissions == [expected_id]
    assert assert_ledger_consistent(session, user.id) == (80, 0)


def test_a_crash_while_finishing_charges_once(
    harness: Harness,
    user: TestUser,
    session: Session,
    settings: Settings,
    connection: Connection,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    upload = make_upload(session, settings, user.id)
    job = harness.create(user, upload, "es")
    spec = harness.start(job["id"])
    write_outputs(spec, upload.id, ["es"])
    harness.runner.set(spec.submission_id, RayJobState.SUCCEEDED)
    emit = service.emit_event

    def crash_after_the_capture(*args: Any, **kwargs: Any) -> None:
        raise SimulatedCrash("crashed between the capture and the commit")

    monkeypatch.setattr(service, "emit_event", crash_after_the_capture)
    with pytest.raises(SimulatedCrash):
        harness.tick()
    assert _job(session, job["id"]).status.value == "running"  # the whole finish rolled back
    assert count_entries(session, user.id, EntryKind.CAPTURE) == 0

    monkeypatch.setattr(service, "emit_event", emit)
    restarted = _restarted(harness, connection)
    restarted.tick()
    restarted.tick()
    assert restarted.get(user, job["id"])["status"] == "succeeded"
    assert count_entries(session, user.id, EntryKind.CAPTURE) == 1
    assert [e.type for e in _events(session, user.id)] == ["job.succeeded"]
    assert assert_ledger_consistent(session, user.id) == (80, 0)


def test_after_a_restart_running_jobs_are_picked_up(
    harness: Harness, user: TestUser, session: Session, settings: Settings, connection: Connection
) -> None:
    upload = make_upload(session, settings, user.id)
    jobs = [harness.create(user, upload, language) for language in ("es", "pt")]
    specs = [harness.start(job["id"]) for job in jobs]
    restarted = _restarted(harness, connection)  # the Ray jobs kept running meanwhile
    write_outputs(specs[0], upload.id, ["es"])
    restarted.runner.set(specs[0].submission_id, RayJobState.SUCCEEDED)
    restarted.progress(jobs[1]["id"], specs[1], status="failed", error={"code": "bad_input", "message": "x"})
    restarted.runner.set(specs[1].submission_id, RayJobState.FAILED)
    restarted.tick()
    assert [restarted.get(user, job["id"])["status"] for job in jobs] == ["succeeded", "failed"]
    assert len(restarted.runner.submissions) == 2
    assert assert_ledger_consistent(session, user.id) == (80, 0)


# --- housekeeping: webhooks and the upload sweep ride on the same tick ------------------------------------------


def test_the_tick_delivers_job_webhooks_and_sweeps_expired_uploads(
    harness: Harness, user: TestUser, session: Session, settings: Settings
) -> None:
    expired = make_upload(session, settings, user.id, status=UploadStatus.UPLOADING)
    expired.expires_at = utcnow() - timedelta(minutes=1)
    session.flush()
    assert harness.tick().uploads_swept == 1
    session.expire_all()
    assert session.get(Upload, expired.id).status is UploadStatus.EXPIRED  # type: ignore[union-attr]
    with receiver() as hook:
        created = harness.client.post(
            "/v1/webhook-endpoints",
            json={"url": hook.url + "/hook", "event_types": ["job.failed"]},
            headers=user.headers,
        ).json()
        upload = make_upload(session, settings, user.id)
        job = harness.create(user, upload, "es")
        spec = harness.start(job["id"])
        harness.progress(job["id"], spec, status="failed", error={"code": "no_audio_stream", "message": "silent"})
        harness.runner.set(spec.submission_id, RayJobState.FAILED)
        report = harness.tick()
        assert report.finished == 1 and report.webhooks_attempted == 1
        (received,) = hook.requests
    Webhook(created["secret"]).verify(received.body, received.headers)
    body = json_body(received)
    assert body["type"] == "job.failed" and body["data"]["job_id"] == job["id"]
    assert body["data"]["error"] == {"code": "no_audio_stream", "message": "silent"}


# --- the worker in the app's lifespan, with a real server and real commits ---------------------------------------


@dataclass
class Live:
    base_url: str
    factory: sessionmaker[Session]
    settings: Settings
    runner: FakeRunner
    user: TestUser
    upload: Upload


@pytest.fixture
def live(db_engine: Engine, tmp_path: Path) -> Iterator[Live]:
    """The app under uvicorn with its worker running (interval 50 ms) on its own committed connections."""
    factory = create_session_factory(db_engine)
    settings = make_settings(data_dir=tmp_path, jobs_worker_enabled=True, jobs_worker_interval_seconds=0.05)
    with factory.begin() as session:
        row = User(email=f"live-{uuid.uuid4().hex[:10]}@example.com", password_hash=PASSWORD_HASH)
        row.email_verified_at = utcnow()
        session.add(row)
        session.flush()
        fund(session, row.id, 100)
        upload = make_upload(session, settings, row.id)
    user = TestUser(row, {"Authorization": f"Bearer {tokens.issue(settings, TokenKind.ACCESS, row.id)}"})
    runner = FakeRunner()
    app = create_app(settings, session_factory=factory, job_runner=runner)
    try:
        with TestClient(app) as lifespan_client, serve_app(app) as base_url:  # TestClient runs the lifespan
            assert lifespan_client.get("/healthz").status_code == 200
            yield Live(base_url, factory, settings, runner, user, upload)
    finally:
        with factory.begin() as session:
            session.execute(delete(User).where(User.id == row.id))


def _wait_for(condition: Callable[[], bool], seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_the_lifespan_worker_runs_jobs_and_sse_follows_them_live(live: Live) -> None:
    http = httpx2.Client(base_url=live.base_url, timeout=10)
    job = http.post("/v1/jobs", json=job_body(live.upload, "es"), headers=live.user.headers).json()
    job_id = job["id"]
    _wait_for(lambda: bool(live.runner.submissions))
    spec = live.runner.last().spec

    streamed: list[tuple[str, dict[str, Any]]] = []

    def follow() -> None:
        with (
            httpx2.Client(base_url=live.base_url, timeout=20) as own,
            own.stream("GET", f"/v1/jobs/{job_id}/events", headers=live.user.headers) as response,
        ):
            kind = ""
            for line in response.iter_lines():
                if line.startswith("event:"):
                    kind = line.partition(":")[2].strip()
                elif line.startswith("data:"):
                    streamed.append((kind, json.loads(line.partition(":")[2])))

    follower = threading.Thread(target=follow, daemon=True)
    follower.start()
    live.runner.set(spec.submission_id, RayJobState.RUNNING)
    _wait_for(lambda: http.get(f"/v1/jobs/{job_id}", headers=live.user.headers).json()["status"] == "running")
    progress_url = f"/internal/jobs/{job_id}/progress"
    for stage, percent in (("analyze", 30.0), ("mux:es", 90.0)):
        report = {"stage": stage, "progress": percent}
        assert http.post(progress_url, json=report, headers=bearer(spec)).json()["accepted"]
        _wait_for(lambda: len(streamed) >= (3 if stage == "analyze" else 4))  # noqa: B023 (called at once)
    write_outputs(spec, live.upload.id, ["es"])
    live.runner.set(spec.submission_id, RayJobState.SUCCEEDED)
    follower.join(15)
    assert not follower.is_alive(), "the stream did not end with the job"
    assert [(kind, data.get("status") or data.get("stage")) for kind, data in streamed] == [
        ("status", "queued"),
        ("status", "running"),
        ("progress", "analyze"),
        ("progress", "mux:es"),
        ("status", "succeeded"),
    ]
    assert http.get(f"/v1/jobs/{job_id}", headers=live.user.headers).json()["charged_credits"] == 20
    with live.factory() as session:
        assert assert_ledger_consistent(session, live.user.id) == (80, 0)
    http.close()


def test_concurrent_requests_with_one_idempotency_key_create_one_job(live: Live) -> None:
    headers = {**live.user.headers, "Idempotency-Key": "double-click"}
    responses: list[httpx2.Response] = []
    start = threading.Barrier(4)

    def post() -> None:
        with httpx2.Client(base_url=live.base_url, timeout=30) as http:
            start.wait()
            responses.append(http.post("/v1/jobs", json=job_body(live.upload, "es"), headers=headers))

    threads = [threading.Thread(target=post) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert [r.status_code for r in responses] == [201] * 4, [r.text for r in responses]
    assert len({r.json()["id"] for r in responses}) == 1
    assert sorted(r.headers.get("idempotent-replayed", "") for r in responses) == ["", "true", "true", "true"]
    with live.factory() as session:
        assert count_entries(session, live.user.id, EntryKind.RESERVE) == 1
        assert assert_ledger_consistent(session, live.user.id) == (100, 20)


def test_unknown_job_events_and_cancel_are_404(client: TestClient, user: TestUser) -> None:
    unknown = "00000000-0000-4000-8000-000000000000"
    assert_error(client.get(f"/v1/jobs/{unknown}/events", headers=user.headers), 404, "job_not_found")
    assert_error(client.post(f"/v1/jobs/{unknown}/cancel", headers=user.headers), 404, "job_not_found")
    assert_error(client.post(f"/v1/jobs/{unknown}/retry", headers=user.headers), 404, "job_not_found")
    assert_error(client.get(f"/v1/jobs/{unknown}/artifacts", headers=user.headers), 404, "job_not_found")

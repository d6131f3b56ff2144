"""The jobs API: creation (validation, estimate, credit hold, Idempotency-Key), listing, cancel, retry, isolation
between users, artifacts with HTTP Range, and the SSE event stream. The Ray side is `FakeRunner` (a test double of
the `JobRunner` boundary); the real cluster is exercised in test_jobs_ray.py."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, delete, select
from sqlalchemy.orm import Session, sessionmaker

from control_plane import metrics
from control_plane.config import Settings
from control_plane.credits.models import CreditAccount, CreditEntry, CreditReservation, EntryKind
from control_plane.db import create_session_factory, utcnow
from control_plane.jobs import artifacts, service
from control_plane.jobs.models import Job
from control_plane.jobs.ray_runner import RayJobState
from control_plane.jobs.repository import JobRepository
from control_plane.jobs.schemas import JobCreate
from control_plane.uploads import service as uploads
from control_plane.uploads.models import Upload, UploadStatus
from control_plane.users.models import User
from tests.control_plane.conftest import PASSWORD_HASH, TestUser, assert_error
from tests.control_plane.jobs_support import (
    MEDIA_BYTES,
    Harness,
    assert_ledger_consistent,
    bearer,
    count_entries,
    fund,
    job_body,
    make_harness,
    make_upload,
)


@pytest.fixture
def harness(
    client: TestClient, session: Session, settings: Settings, session_factory: sessionmaker[Session]
) -> Harness:
    return make_harness(client, session, settings, session_factory)


@pytest.fixture
def funded(make_user: Callable[..., TestUser], session: Session) -> Callable[[int], TestUser]:
    def make(amount: int = 1000) -> TestUser:
        user = make_user()
        fund(session, user.id, amount)
        return user

    return make


def _balance(client: TestClient, user: TestUser) -> dict[str, Any]:
    return dict(client.get("/v1/credits", headers=user.headers).json())


# --- creation ----------------------------------------------------------------------------------------------------


def test_create_reserves_the_estimate_and_normalises_the_request(
    harness: Harness, funded: Callable[[int], TestUser], session: Session, settings: Settings
) -> None:
    user = funded(100)
    upload = make_upload(session, settings, user.id, duration=90.0)  # 2 started minutes
    job = harness.create(user, upload, "es", "spa", "pt-BR", source_language="EN")
    assert job["status"] == "queued" and job["progress"] == 0 and job["stage"] is None and job["error"] is None
    assert job["target_languages"] == ["es", "pt"]  # 'spa' and 'es' are one language
    assert job["source_language"] == "en"
    assert job["options"] == {
        "speakers": "auto",
        "separation": "auto",
        "keep_original_audio": False,
        "burn_subtitles": False,
        "profile": "auto",
    }
    assert job["reserved_credits"] == 2 * 2 * 10 and job["charged_credits"] is None
    assert _balance(harness.client, user) == {"balance": 100, "reserved": 40, "available": 60}
    assert assert_ledger_consistent(session, user.id) == (100, 40)
    assert harness.get(user, job["id"]) == job

    auto = harness.create(user, upload, "fr", source_language="auto", options={"speakers": 2, "profile": "offline"})
    assert auto["source_language"] is None and auto["options"]["speakers"] == 2 and auto["reserved_credits"] == 20


def test_bad_requests_are_4xx_with_the_error_shape(
    client: TestClient,
    funded: Callable[[int], TestUser],
    make_user: Callable[..., TestUser],
    session: Session,
    settings: Settings,
) -> None:
    user, other = funded(1000), make_user()
    upload = make_upload(session, settings, user.id)
    others_upload = make_upload(session, settings, other.id)
    unfinished = make_upload(session, settings, user.id, status=UploadStatus.UPLOADING)

    def post(body: dict[str, Any], **headers: str) -> Any:
        return client.post("/v1/jobs", json=body, headers={**user.headers, **headers})

    assert_error(client.post("/v1/jobs", json=job_body(upload)), 401, "not_authenticated")
    assert_error(post(job_body(upload) | {"upload_id": "0" * 32}), 404, "upload_not_found")
    assert_error(post(job_body(others_upload)), 404, "upload_not_found")
    assert_error(post(job_body(upload) | {"upload_id": "../../etc/passwd"}), 404, "upload_not_found")
    assert_error(post(job_body(unfinished)), 409, "upload_not_ready")
    error = assert_error(post(job_body(upload, "es", "xx")), 422, "unsupported_language")
    assert error["details"]["language"] == "xx"
    assert_error(post(job_body(upload, "klingon")), 422, "unsupported_language")
    assert_error(post(job_body(upload, source_language="zz")), 422, "unsupported_language")
    too_many = assert_error(post(job_body(upload, "es", "pt", "fr", "de", "it", "ca")), 422, "too_many_languages")
    assert too_many["details"]["max"] == settings.jobs_max_target_languages == 5
    assert_error(post(job_body(upload) | {"target_languages": []}), 422, "validation_error")
    assert_error(post(job_body(upload) | {"target_languages": "es"}), 422, "validation_error")
    assert_error(post(job_body(upload) | {"colour": "blue"}), 422, "validation_error")
    assert_error(post(job_body(upload, options={"speakers": 0})), 422, "validation_error")
    assert_error(post(job_body(upload, options={"separation": "magic"})), 422, "validation_error")
    assert_error(post(job_body(upload, options={"profile": "turbo"})), 422, "validation_error")
    assert_error(post({"target_languages": ["es"]}), 422, "validation_error")
    assert_error(post(job_body(upload), **{"Idempotency-Key": "x" * 256}), 422, "invalid_idempotency_key")
    assert_error(client.post("/v1/jobs", content=b"{not json", headers=user.headers), 422, "validation_error")
    assert session.scalars(select(Job).where(Job.user_id == user.id)).all() == []
    assert assert_ledger_consistent(session, user.id) == (1000, 0)


def test_a_short_balance_is_402_with_the_estimate(
    client: TestClient, funded: Callable[[int], TestUser], session: Session, settings: Settings
) -> None:
    user = funded(30)
    upload = make_upload(session, settings, user.id, duration=61.0)
    response = client.post("/v1/jobs", json=job_body(upload, "es", "pt"), headers=user.headers)
    error = assert_error(response, 402, "insufficient_credits")
    assert error["details"]["required"] == 40 and error["details"]["available"] == 30
    assert error["details"]["shortfall"] == 10
    assert error["details"]["estimate"] == {
        "credits": 40,
        "started_minutes": 2,
        "target_languages": ["es", "pt"],
        "credits_per_minute": 10,
    }
    assert client.get("/v1/jobs", headers=user.headers).json()["items"] == []
    assert assert_ledger_consistent(session, user.id) == (30, 0)
    fits = client.post("/v1/jobs", json=job_body(upload, "es"), headers=user.headers)  # 20 credits: fits
    assert fits.status_code == 201


def test_idempotency_key_replays_the_same_job_and_refuses_another_body(
    client: TestClient, funded: Callable[[int], TestUser], session: Session, settings: Settings
) -> None:
    user, other = funded(1000), funded(1000)
    upload = make_upload(session, settings, user.id)
    key = {"Idempotency-Key": "order-42"}
    first = client.post("/v1/jobs", json=job_body(upload, "es"), headers={**user.headers, **key})
    assert first.status_code == 201 and "idempotent-replayed" not in first.headers
    # The same body spelled differently (key order, explicit defaults) is the same request.
    same = {"options": {"profile": "auto"}, "target_languages": ["es"], "upload_id": upload.id}
    again = client.post("/v1/jobs", json=same, headers={**user.headers, **key})
    assert again.status_code == 201 and again.headers["idempotent-replayed"] == "true"
    assert again.json() == first.json()
    assert _balance(client, user)["reserved"] == 20  # reserved once
    assert count_entries(session, user.id, EntryKind.RESERVE) == 1

    changed = client.post("/v1/jobs", json=job_body(upload, "pt"), headers={**user.headers, **key})
    error = assert_error(changed, 422, "idempotency_key_reused")
    assert error["details"]["job_id"] == first.json()["id"]

    # Keys belong to a user: another user's identical key is unrelated.
    others_upload = make_upload(session, settings, other.id)
    theirs = client.post("/v1/jobs", json=job_body(others_upload, "es"), headers={**other.headers, **key})
    assert theirs.status_code == 201 and theirs.json()["id"] != first.json()["id"]
    no_key = client.post("/v1/jobs", json=job_body(upload, "es"), headers=user.headers)
    assert no_key.json()["id"] != first.json()["id"]
    assert assert_ledger_consistent(session, user.id) == (1000, 40)


# --- listing, cancel, retry ----------------------------------------------------------------------------------------


def test_list_is_paginated_newest_first_and_filters_by_status(
    harness: Harness, funded: Callable[[int], TestUser], session: Session, settings: Settings
) -> None:
    user = funded(1000)
    upload = make_upload(session, settings, user.id)
    ids = [harness.create(user, upload, "es")["id"] for _ in range(3)]
    harness.client.post(f"/v1/jobs/{ids[0]}/cancel", headers=user.headers)

    page = harness.client.get("/v1/jobs?limit=2", headers=user.headers).json()
    assert [j["id"] for j in page["items"]] == [ids[2], ids[1]]
    rest = harness.client.get(f"/v1/jobs?limit=2&cursor={page['next_cursor']}", headers=user.headers).json()
    assert [j["id"] for j in rest["items"]] == [ids[0]] and rest["next_cursor"] is None
    canceled = harness.client.get("/v1/jobs?status=canceled", headers=user.headers).json()
    assert [j["id"] for j in canceled["items"]] == [ids[0]]
    queued = harness.client.get("/v1/jobs?status=queued", headers=user.headers).json()
    assert [j["id"] for j in queued["items"]] == [ids[2], ids[1]]
    assert_error(harness.client.get("/v1/jobs?status=done", headers=user.headers), 422, "validation_error")
    assert_error(harness.client.get("/v1/jobs?cursor=garbage", headers=user.headers), 422, "invalid_cursor")
    assert_error(harness.client.get("/v1/jobs/not-a-uuid", headers=user.headers), 422, "validation_error")


def test_cancel_a_queued_job_releases_at_once_and_a_finished_job_is_409(
    harness: Harness, funded: Callable[[int], TestUser], session: Session, settings: Settings
) -> None:
    user = funded(100)
    upload = make_upload(session, settings, user.id)
    job = harness.create(user, upload, "es")
    response = harness.client.post(f"/v1/jobs/{job['id']}/cancel", headers=user.headers)
    assert response.status_code == 202
    assert response.json()["status"] == "canceled" and response.json()["finished_at"] is not None
    assert assert_ledger_consistent(session, user.id) == (100, 0)
    assert count_entries(session, user.id, EntryKind.CAPTURE) == 0
    again = assert_error(harness.client.post(f"/v1/jobs/{job['id']}/cancel", headers=user.headers), 409, "job_finished")
    assert again["details"]["status"] == "canceled"
    harness.tick()
    assert harness.runner.submissions == []  # a canceled job never reaches Ray


def test_retry_only_failed_or_canceled_jobs_with_a_new_hold(
    harness: Harness, funded: Callable[[int], TestUser], session: Session, settings: Settings
) -> None:
    user = funded(100)
    upload = make_upload(session, settings, user.id)
    job = harness.create(user, upload, "es")
    assert_error(harness.client.post(f"/v1/jobs/{job['id']}/retry", headers=user.headers), 409, "job_not_retryable")
    harness.start(job["id"])
    assert harness.get(user, job["id"])["status"] == "running"
    error = assert_error(harness.client.post(f"/v1/jobs/{job['id']}/retry", headers=user.headers), 409)
    assert error["code"] == "job_not_retryable" and error["details"]["status"] == "running"

    harness.client.post(f"/v1/jobs/{job['id']}/cancel", headers=user.headers)
    harness.tick()
    assert harness.get(user, job["id"])["status"] == "canceled"
    assert assert_ledger_consistent(session, user.id) == (100, 0)

    retried = harness.client.post(f"/v1/jobs/{job['id']}/retry", headers=user.headers)
    assert retried.status_code == 202
    body = retried.json()
    assert body["status"] == "queued" and body["cancel_requested"] is False and body["progress"] == 0
    assert body["finished_at"] is None and body["reserved_credits"] == 20
    assert assert_ledger_consistent(session, user.id) == (100, 20)
    harness.tick()
    assert len(harness.runner.submissions) == 2 and harness.runner.submissions[-1].endswith("-2")

    broke = funded(20)
    their_upload = make_upload(session, settings, broke.id)
    theirs = harness.create(broke, their_upload, "es")
    harness.client.post(f"/v1/jobs/{theirs['id']}/cancel", headers=broke.headers)
    harness.create(broke, their_upload, "es")  # holds all 20 credits
    short = harness.client.post(f"/v1/jobs/{theirs['id']}/retry", headers=broke.headers)
    assert assert_error(short, 402, "insufficient_credits")["details"]["estimate"]["credits"] == 20
    assert harness.get(broke, theirs["id"])["status"] == "canceled"


# --- isolation: user B can never see or change user A's job ------------------------------------------------------

FOREIGN_REQUESTS = {
    "read": ("GET", "/v1/jobs/{id}"),
    "cancel": ("POST", "/v1/jobs/{id}/cancel"),
    "retry": ("POST", "/v1/jobs/{id}/retry"),
    "events": ("GET", "/v1/jobs/{id}/events"),
    "artifacts": ("GET", "/v1/jobs/{id}/artifacts"),
    "artifact": ("GET", "/v1/jobs/{id}/artifacts/{artifact}"),
    "delete": ("DELETE", "/v1/jobs/{id}"),
}


@pytest.mark.parametrize("action", sorted(FOREIGN_REQUESTS))
def test_another_user_gets_404_for_every_job_resource(
    action: str, harness: Harness, funded: Callable[[int], TestUser], session: Session, settings: Settings
) -> None:
    alice, mallory = funded(100), funded(100)
    upload = make_upload(session, settings, alice.id)
    job = harness.create(alice, upload, "es")
    # Each job in the state where Alice's own request succeeds: only ownership stands in Mallory's way.
    if action == "retry":
        harness.client.post(f"/v1/jobs/{job['id']}/cancel", headers=alice.headers)
    elif action != "cancel":
        harness.succeed(alice, job["id"], upload)
    before = harness.get(alice, job["id"])
    method, template = FOREIGN_REQUESTS[action]
    path = template.format(id=job["id"], artifact=f"{upload.id}.es.mp4")

    assert_error(harness.client.request(method, path, headers=mallory.headers), 404, "job_not_found")
    assert harness.get(alice, job["id"]) == before
    assert harness.client.get("/v1/jobs", headers=mallory.headers).json()["items"] == []
    assert assert_ledger_consistent(session, mallory.id) == (100, 0)
    assert harness.client.request(method, path, headers=alice.headers).status_code in (200, 202, 204)


# --- artifacts -----------------------------------------------------------------------------------------------------


def test_artifacts_of_a_succeeded_job_are_listed_and_downloaded_with_ranges(
    harness: Harness, funded: Callable[[int], TestUser], session: Session, settings: Settings
) -> None:
    user = funded(100)
    upload = make_upload(session, settings, user.id, filename="../../My Talk (final).mov")
    job = harness.create(user, upload, "es")
    assert_error(harness.client.get(f"/v1/jobs/{job['id']}/artifacts", headers=user.headers), 409, "job_not_succeeded")
    harness.succeed(user, job["id"], upload)

    listed = harness.client.get(f"/v1/jobs/{job['id']}/artifacts", headers=user.headers).json()["items"]
    by_name = {a["name"]: a for a in listed}
    stem = upload.id
    assert set(by_name) == {f"{stem}.es.mp4", f"{stem}.es.srt", f"{stem}.es.vtt", f"{stem}.transcript.json"}
    assert by_name[f"{stem}.es.mp4"] == {
        "name": f"{stem}.es.mp4",
        "size": len(MEDIA_BYTES),
        "kind": "video",
        "language": "es",
        "content_type": "video/mp4",
    }
    assert by_name[f"{stem}.es.srt"]["kind"] == "subtitles" and by_name[f"{stem}.es.srt"]["language"] == "es"
    assert by_name[f"{stem}.transcript.json"]["kind"] == "transcript"

    url = f"/v1/jobs/{job['id']}/artifacts/{stem}.es.mp4"
    whole = harness.client.get(url, headers=user.headers)
    assert whole.status_code == 200 and whole.content == MEDIA_BYTES
    assert whole.headers["content-type"] == "video/mp4" and whole.headers["accept-ranges"] == "bytes"
    # The client's file name (sanitised: no path, no brackets) replaces the upload id in the offered name.
    assert whole.headers["content-disposition"] == "attachment; filename*=utf-8''My%20Talk%20_final.es.mp4"

    part = harness.client.get(url, headers={**user.headers, "Range": "bytes=10-19"})
    assert part.status_code == 206 and part.content == MEDIA_BYTES[10:20]
    assert part.headers["content-range"] == f"bytes 10-19/{len(MEDIA_BYTES)}"
    tail = harness.client.get(url, headers={**user.headers, "Range": "bytes=-5"})
    assert tail.status_code == 206 and tail.content == MEDIA_BYTES[-5:]
    beyond = harness.client.get(url, headers={**user.headers, "Range": f"bytes={len(MEDIA_BYTES)}-"})
    assert_error(beyond, 416, "range_not_satisfiable")
    assert beyond.headers["content-range"] == f"bytes */{len(MEDIA_BYTES)}"
    assert_error(harness.client.get(url, headers={**user.headers, "Range": "lines=1-2"}), 400, "invalid_range")

    vtt = harness.client.get(f"/v1/jobs/{job['id']}/artifacts/{stem}.es.vtt", headers=user.headers)
    assert vtt.headers["content-type"].startswith("text/vtt") and vtt.text.startswith("WEBVTT")
    srt = harness.client.get(f"/v1/jobs/{job['id']}/artifacts/{stem}.es.srt", headers=user.headers)
    assert srt.headers["content-type"].startswith("application/x-subrip")

    # Names are looked up in the listing, never joined onto a path.
    (settings.data_dir / "secret.txt").write_text("top secret")
    for name in ("..%2F..%2F..%2Fsecret.txt", "%2E%2E", ".octavia-partial-0000", "%2Fetc%2Fpasswd", "nope.es.mp4"):
        response = harness.client.get(f"/v1/jobs/{job['id']}/artifacts/{name}", headers=user.headers)
        assert_error(response, 404)  # artifact_not_found, or no route at all for a decoded slash
        assert "top secret" not in response.text
    for name in ("../../../secret.txt", "/etc/passwd", f"./{stem}.es.mp4", "out/../../secret.txt"):
        with pytest.raises(service.ArtifactNotFoundError):
            service.get_job_artifact(session, settings, user.id, uuid.UUID(job["id"]), name)


# --- deletion and retention ---------------------------------------------------------------------------------------


def test_deleting_a_finished_job_hides_it_keeps_the_ledger_frees_its_key_and_removes_its_files(
    harness: Harness, funded: Callable[[int], TestUser], session: Session, settings: Settings
) -> None:
    user = funded(100)
    upload = make_upload(session, settings, user.id)
    key = {"Idempotency-Key": "dub-42"}
    body = job_body(upload, "es")
    job = harness.client.post("/v1/jobs", json=body, headers={**user.headers, **key}).json()
    harness.succeed(user, job["id"], upload)
    folder = artifacts.job_dir(settings.data_dir, uuid.UUID(job["id"]))
    assert (folder / "out" / f"{upload.id}.es.mp4").is_file()
    ledger = assert_ledger_consistent(session, user.id)
    assert ledger == (80, 0)  # 2 started minutes x 10 charged

    deleted = harness.client.delete(f"/v1/jobs/{job['id']}", headers=user.headers)
    assert deleted.status_code == 204 and deleted.content == b""
    for path in ("", "/events", "/artifacts", f"/artifacts/{upload.id}.es.mp4"):
        assert_error(harness.client.get(f"/v1/jobs/{job['id']}{path}", headers=user.headers), 404, "job_not_found")
    assert harness.client.get("/v1/jobs", headers=user.headers).json()["items"] == []
    assert_error(harness.client.delete(f"/v1/jobs/{job['id']}", headers=user.headers), 404, "job_not_found")
    assert folder.is_dir()  # the worker removes it
    assert harness.tick().job_files_removed == 1
    assert not folder.exists() and harness.tick().job_files_removed == 0
    assert assert_ledger_consistent(session, user.id) == ledger  # what was charged stays charged
    row = session.get(Job, uuid.UUID(job["id"]))
    assert row is not None and row.deleted_at is not None and row.files_removed_at is not None
    assert JobRepository(session).events_after(row.id, 0) == []

    # The key lived as long as the job: the same request now makes a new job.
    again = harness.client.post("/v1/jobs", json=body, headers={**user.headers, **key})
    assert again.status_code == 201 and "Idempotent-Replayed" not in again.headers
    assert again.json()["id"] != job["id"]


def test_a_queued_or_running_job_is_not_deleted(
    harness: Harness, funded: Callable[[int], TestUser], session: Session, settings: Settings
) -> None:
    user = funded(100)
    upload = make_upload(session, settings, user.id)
    queued = harness.create(user, upload, "es")
    assert_error(harness.client.delete(f"/v1/jobs/{queued['id']}", headers=user.headers), 409, "job_not_finished")
    running = harness.create(user, upload, "pt")
    harness.start(queued["id"])
    harness.start(running["id"])
    refused = harness.client.delete(f"/v1/jobs/{running['id']}", headers=user.headers)
    assert assert_error(refused, 409, "job_not_finished")["details"]["status"] == "running"
    assert harness.tick().job_files_removed == 0
    assert artifacts.out_dir(settings.data_dir, uuid.UUID(running["id"])).is_dir()
    assert harness.get(user, running["id"])["status"] == "running"


def _files_removed(reason: str) -> float:
    return metrics.DOMAIN_REGISTRY.get_sample_value("octavia_job_files_removed_total", {"reason": reason}) or 0.0


def _finished_days_ago(session: Session, job_id: str, days: float) -> None:
    job = session.get(Job, uuid.UUID(job_id))
    assert job is not None and job.finished_at is not None
    job.finished_at = utcnow() - timedelta(days=days)
    session.flush()


def test_files_of_finished_jobs_are_removed_after_the_retention_and_their_artifacts_are_gone(
    harness: Harness, funded: Callable[[int], TestUser], session: Session, settings: Settings
) -> None:
    assert settings.jobs_artifact_retention_days == 30  # the default
    user = funded(1000)
    upload = make_upload(session, settings, user.id)
    old, recent, failed = (harness.create(user, upload, language) for language in ("es", "pt", "fr"))
    harness.succeed(user, old["id"], upload)
    harness.succeed(user, recent["id"], upload)
    spec = harness.start(failed["id"])
    harness.runner.set(spec.submission_id, RayJobState.FAILED, "bad input")
    harness.progress(failed["id"], spec, status="failed", error={"code": "not_media", "message": "not media"})
    harness.tick()
    assert harness.get(user, failed["id"])["status"] == "failed"

    shown = harness.get(user, old["id"])
    finished = datetime.fromisoformat(shown["finished_at"])
    assert datetime.fromisoformat(shown["artifacts_expire_at"]) == finished + timedelta(days=30)
    assert harness.get(user, failed["id"])["artifacts_expire_at"] is None  # nothing to download
    _finished_days_ago(session, old["id"], 30.01)
    _finished_days_ago(session, recent["id"], 29.9)
    _finished_days_ago(session, failed["id"], 31)

    # Gone as soon as the time has passed, before the sweep, so no download races it.
    expired = harness.client.get(f"/v1/jobs/{old['id']}/artifacts", headers=user.headers)
    assert assert_error(expired, 410, "artifacts_expired")["details"]["job_id"] == old["id"]
    removed_before = _files_removed("expired")
    assert harness.tick().job_files_removed == 2
    assert _files_removed("expired") - removed_before == 2  # operators see it on the dashboard
    assert not artifacts.job_dir(settings.data_dir, uuid.UUID(old["id"])).exists()
    assert not artifacts.job_dir(settings.data_dir, uuid.UUID(failed["id"])).exists()
    download = harness.client.get(f"/v1/jobs/{old['id']}/artifacts/{upload.id}.es.mp4", headers=user.headers)
    assert_error(download, 410, "artifacts_expired")
    assert harness.get(user, old["id"])["status"] == "succeeded"  # the job itself stays
    listed = harness.client.get(f"/v1/jobs/{recent['id']}/artifacts", headers=user.headers)
    assert listed.status_code == 200 and len(listed.json()["items"]) == 4

    # A retried job writes a new folder; its files count from its new finish.
    assert harness.client.post(f"/v1/jobs/{failed['id']}/retry", headers=user.headers).status_code == 202
    harness.succeed(user, failed["id"], upload)
    again = harness.client.get(f"/v1/jobs/{failed['id']}/artifacts", headers=user.headers)
    assert again.status_code == 200 and len(again.json()["items"]) == 4
    assert harness.tick().job_files_removed == 0


def test_a_retention_of_zero_keeps_files_until_the_job_is_deleted(
    harness: Harness, funded: Callable[[int], TestUser], session: Session, settings: Settings
) -> None:
    settings.jobs_artifact_retention_days = 0
    user = funded(100)
    upload = make_upload(session, settings, user.id)
    job = harness.create(user, upload, "es")
    harness.succeed(user, job["id"], upload)
    assert harness.get(user, job["id"])["artifacts_expire_at"] is None
    _finished_days_ago(session, job["id"], 3650)
    assert harness.tick().job_files_removed == 0
    listed = harness.client.get(f"/v1/jobs/{job['id']}/artifacts", headers=user.headers)
    assert listed.status_code == 200 and len(listed.json()["items"]) == 4
    assert harness.client.delete(f"/v1/jobs/{job['id']}", headers=user.headers).status_code == 204
    assert harness.tick().job_files_removed == 1
    assert not artifacts.job_dir(settings.data_dir, uuid.UUID(job["id"])).exists()


def test_an_upload_deleted_while_jobs_dub_it_keeps_its_file_until_the_last_one_finished(
    harness: Harness, funded: Callable[[int], TestUser], session: Session, settings: Settings
) -> None:
    user = funded(1000)
    upload = make_upload(session, settings, user.id)
    media = Path(upload.storage_path)
    running, queued = harness.create(user, upload, "es"), harness.create(user, upload, "pt")
    harness.start(running["id"])
    tus = {**user.headers, "Tus-Resumable": "1.0.0"}
    assert harness.client.delete(f"/v1/uploads/{upload.id}", headers=tus).status_code == 204
    assert_error(harness.client.get(f"/v1/uploads/{upload.id}", headers=user.headers), 404, "upload_not_found")
    assert media.read_bytes() == MEDIA_BYTES  # both jobs still have to read it
    refused = harness.client.post("/v1/jobs", json=job_body(upload, "fr"), headers=user.headers)
    assert_error(refused, 404, "upload_not_found")

    harness.succeed(user, running["id"], upload)
    assert harness.get(user, queued["id"])["status"] == "queued" and media.exists()  # sent to Ray, not started
    assert harness.client.post(f"/v1/jobs/{queued['id']}/cancel", headers=user.headers).status_code == 202
    harness.tick()  # stops its Ray job, which is then canceled
    assert harness.get(user, queued["id"])["status"] == "canceled"
    assert not media.exists()
    assert_error(harness.client.post(f"/v1/jobs/{queued['id']}/retry", headers=user.headers), 404, "upload_not_found")


def test_an_upload_no_job_reads_is_deleted_at_once(
    harness: Harness, funded: Callable[[int], TestUser], session: Session, settings: Settings
) -> None:
    user = funded(100)
    upload = make_upload(session, settings, user.id)
    job = harness.create(user, upload, "es")
    harness.succeed(user, job["id"], upload)
    tus = {**user.headers, "Tus-Resumable": "1.0.0"}
    assert harness.client.delete(f"/v1/uploads/{upload.id}", headers=tus).status_code == 204
    assert not Path(upload.storage_path).exists()
    listed = harness.client.get(f"/v1/jobs/{job['id']}/artifacts", headers=user.headers)  # the outputs stay
    assert listed.status_code == 200 and len(listed.json()["items"]) == 4


def test_a_termination_racing_a_job_creation_waits_for_it_and_keeps_the_file(
    db_engine: Engine, settings: Settings
) -> None:
    """Real concurrent transactions (committed): the termination locks the upload's row, which the job being
    inserted already holds (PostgreSQL takes a key-share lock on a row a new foreign key refers to; SQLite
    serialises writers), so it waits for the job, sees it, and keeps the file the job will read."""
    factory = create_session_factory(db_engine)
    with factory.begin() as setup:
        user = User(email=f"race-{uuid.uuid4().hex[:8]}@example.com", password_hash=PASSWORD_HASH)
        setup.add(user)
        setup.flush()
        fund(setup, user.id, 100)
        upload = make_upload(setup, settings, user.id)
    user_id, upload_id, media = user.id, upload.id, Path(upload.storage_path)
    terminated = threading.Event()

    def terminate() -> None:
        with factory.begin() as session:
            uploads.terminate_upload(session, user_id, upload_id)
        terminated.set()

    terminator = threading.Thread(target=terminate)
    try:
        with factory.begin() as creating:
            body = JobCreate.model_validate({"upload_id": upload_id, "target_languages": ["es"]})
            job, _ = service.create_job(creating, settings, user_id, body, None)
            terminator.start()
            assert not terminated.wait(1.0)  # blocked on the upload's row until the job is committed
        terminator.join(timeout=30)
        assert terminated.is_set() and media.read_bytes() == MEDIA_BYTES
        with factory() as check:
            assert check.get(Upload, upload_id).status is UploadStatus.DELETED  # type: ignore[union-attr]
            assert check.get(Job, job.id).status.value == "queued"  # type: ignore[union-attr]
    finally:
        with factory.begin() as cleanup:
            cleanup.execute(delete(Job).where(Job.user_id == user_id))
            for model in (CreditEntry, CreditReservation, CreditAccount, Upload):
                cleanup.execute(delete(model).where(model.user_id == user_id))
            cleanup.execute(delete(User).where(User.id == user_id))


# --- events (SSE) --------------------------------------------------------------------------------------------------


def _read_sse(client: TestClient, path: str, headers: dict[str, str]) -> list[tuple[str, int, dict[str, Any]]]:
    """(event, id, data) of every event, reading until the server closes the stream."""
    events = []
    with client.stream("GET", path, headers=headers) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        block: dict[str, str] = {}
        for line in response.iter_lines():
            if not line:
                if "data" in block:
                    events.append((block.get("event", "message"), int(block["id"]), json.loads(block["data"])))
                block = {}
            elif not line.startswith(":"):
                name, _, value = line.partition(":")
                block[name] = value.removeprefix(" ")
    return events


def test_events_replay_in_order_and_the_stream_ends_with_the_job(
    harness: Harness, funded: Callable[[int], TestUser], session: Session, settings: Settings
) -> None:
    user = funded(100)
    upload = make_upload(session, settings, user.id)
    job = harness.create(user, upload, "es")
    harness.succeed(user, job["id"], upload, media_duration=42.0)

    events = _read_sse(harness.client, f"/v1/jobs/{job['id']}/events", user.headers)
    kinds = [(kind, data.get("status") or data.get("stage")) for kind, _, data in events]
    assert kinds == [
        ("status", "queued"),
        ("status", "running"),
        ("progress", "analyze"),
        ("progress", "synthesize:es"),
        ("progress", "done"),
        ("status", "succeeded"),
    ]
    ids = [event_id for _, event_id, _ in events]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    assert events[2][2] == {"stage": "analyze", "progress": 40.0, "eta_seconds": 30.0}
    assert events[-1][2]["progress"] == 100.0 and events[-1][2]["error"] is None

    resumed = _read_sse(harness.client, f"/v1/jobs/{job['id']}/events", {**user.headers, "Last-Event-ID": str(ids[3])})
    assert [event_id for _, event_id, _ in resumed] == ids[4:]
    assert_error(harness.client.get(f"/v1/jobs/{job['id']}/events"), 401, "not_authenticated")


def test_the_progress_channel_is_internal_and_token_bound(
    harness: Harness, funded: Callable[[int], TestUser], session: Session, settings: Settings
) -> None:
    user = funded(100)
    upload = make_upload(session, settings, user.id)
    job, other = harness.create(user, upload, "es"), harness.create(user, upload, "pt")
    spec = harness.start(job["id"])
    other_spec = harness.spec(other["id"])
    url = f"/internal/jobs/{job['id']}/progress"
    report = {"stage": "analyze", "progress": 10.0}

    assert_error(harness.client.post(url, json=report), 401, "invalid_progress_token")
    assert_error(harness.client.post(url, json=report, headers=user.headers), 401, "invalid_progress_token")
    other_token = {"Authorization": f"Bearer {other_spec.env['OCTAVIA_PROGRESS_TOKEN']}"}
    assert_error(harness.client.post(url, json=report, headers=other_token), 401, "invalid_progress_token")
    unknown = "/internal/jobs/00000000-0000-4000-8000-000000000000/progress"
    assert_error(harness.client.post(unknown, json=report, headers=bearer(spec)), 401, "invalid_progress_token")
    assert_error(harness.progress(job["id"], spec, stage="x", progress=150.0), 422, "validation_error")
    assert_error(harness.progress(job["id"], spec, stage="x", status="exploded"), 422, "validation_error")
    assert_error(harness.progress(job["id"], spec, stage="x", warnings=["w"] * 21), 422, "validation_error")
    assert_error(harness.progress(job["id"], spec, stage="x", warnings=["w" * 1001]), 422, "validation_error")
    assert harness.get(user, job["id"])["progress"] == 0

    ok = harness.progress(job["id"], spec, **report)
    assert ok.json() == {"accepted": True, "status": "running", "cancel_requested": False}
    assert harness.get(user, job["id"])["stage"] == "analyze"

    schema = harness.client.get("/openapi.json").json()
    assert not [path for path in schema["paths"] if path.startswith("/internal")]
    assert "OCTAVIA_PROGRESS_TOKEN" not in " ".join(spec.arguments)
    assert spec.env["OCTAVIA_PROGRESS_TOKEN"] not in " ".join(spec.arguments)

"""Helpers for the jobs tests: a fake of the Ray boundary (`JobRunner`), ready uploads, credits, the ledger
invariant, and the pipeline's side of a run (progress posts, output files)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from control_plane.config import Settings
from control_plane.credits import service as credits
from control_plane.credits.models import CreditAccount, CreditEntry, EntryKind
from control_plane.credits.repository import CreditRepository
from control_plane.db import utcnow
from control_plane.jobs.ray_runner import PROGRESS_TOKEN_ENV, JobSpec, RayJobState, RunnerStatus, RunnerUnavailableError
from control_plane.jobs.reconciler import Reconciler, TickReport
from control_plane.uploads import storage
from control_plane.uploads.models import Upload, UploadStatus
from tests.control_plane.conftest import TestUser

MEDIA_BYTES = bytes(range(256)) * 40  # stands in for a video file: 10,240 distinct-enough bytes


class SimulatedCrash(BaseException):
    """Kills a reconciler tick mid-way like a process crash would: not an `Exception`, so nothing catches it."""


@dataclass
class FakeRayJob:
    spec: JobSpec
    state: RayJobState = RayJobState.PENDING
    message: str = ""


@dataclass
class FakeRunner:
    """The Ray cluster as the reconciler sees it; survives a control-plane "restart" like a real cluster would."""

    jobs: dict[str, FakeRayJob] = field(default_factory=dict)
    submissions: list[str] = field(default_factory=list)
    stops: list[str] = field(default_factory=list)
    unavailable: bool = False
    crash_on_submit: str | None = None  # "before" or "after" Ray registered the job

    def submit(self, spec: JobSpec) -> str:
        if self.unavailable:
            raise RunnerUnavailableError("cluster down")
        if self.crash_on_submit == "before":
            self.crash_on_submit = None
            raise SimulatedCrash("crashed before the submission reached Ray")
        if spec.submission_id not in self.jobs:
            self.jobs[spec.submission_id] = FakeRayJob(spec)
            self.submissions.append(spec.submission_id)
        if self.crash_on_submit == "after":
            self.crash_on_submit = None
            raise SimulatedCrash("crashed after Ray registered the job")
        return spec.submission_id

    def status(self, ray_job_id: str) -> RunnerStatus:
        if self.unavailable:
            raise RunnerUnavailableError("cluster down")
        job = self.jobs.get(ray_job_id)
        return RunnerStatus(RayJobState.NOT_FOUND) if job is None else RunnerStatus(job.state, job.message)

    def stop(self, ray_job_id: str) -> None:
        if self.unavailable:
            raise RunnerUnavailableError("cluster down")
        self.stops.append(ray_job_id)
        job = self.jobs.get(ray_job_id)
        if job is not None and job.state in (RayJobState.PENDING, RayJobState.RUNNING):
            job.state = RayJobState.STOPPED

    def set(self, ray_job_id: str, state: RayJobState, message: str = "") -> None:
        self.jobs[ray_job_id].state = state
        self.jobs[ray_job_id].message = message

    def last(self) -> FakeRayJob:
        return self.jobs[self.submissions[-1]]


def argument(spec: JobSpec, name: str) -> str:
    arguments = list(spec.arguments)
    return arguments[arguments.index(name) + 1]


def token(spec: JobSpec) -> str:
    return spec.env[PROGRESS_TOKEN_ENV]


def bearer(spec: JobSpec) -> dict[str, str]:
    return {"Authorization": f"Bearer {token(spec)}"}


def write_outputs(spec: JobSpec, stem: str, languages: list[str], *, video: bytes = MEDIA_BYTES) -> Path:
    """What a successful pipeline run leaves in --out."""
    out = Path(argument(spec, "--out"))
    out.mkdir(parents=True, exist_ok=True)
    for language in languages:
        (out / f"{stem}.{language}.mp4").write_bytes(video)
        (out / f"{stem}.{language}.srt").write_text(f"1\n00:00:00,000 --> 00:00:01,000\nhola {language}\n")
        (out / f"{stem}.{language}.vtt").write_text("WEBVTT\n\n00:00.000 --> 00:01.000\nhola\n")
    (out / f"{stem}.transcript.json").write_text('{"segments": []}')
    (out / ".octavia-partial-0000").mkdir(exist_ok=True)  # the pipeline's work folder: never an artifact
    return out


def make_upload(
    session: Session,
    settings: Settings,
    user_id: uuid.UUID,
    *,
    duration: float | None = 90.0,
    status: UploadStatus = UploadStatus.COMPLETE,
    filename: str | None = "My Talk.mp4",
) -> Upload:
    upload_id = uuid.uuid4().hex
    path = storage.upload_path(settings.data_dir, user_id, upload_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(MEDIA_BYTES)
    complete = status is UploadStatus.COMPLETE
    upload = Upload(
        id=upload_id,
        user_id=user_id,
        filename=filename,
        length=len(MEDIA_BYTES),
        offset=len(MEDIA_BYTES) if complete else 0,
        status=status,
        storage_path=str(path),
        media_duration=duration if complete else None,
        expires_at=utcnow(),
        completed_at=utcnow() if complete else None,
    )
    session.add(upload)
    session.flush()
    return upload


def fund(session: Session, user_id: uuid.UUID, amount: int) -> None:
    credits.grant(session, user_id, amount, reference="test funds")
    session.flush()


def assert_ledger_consistent(session: Session, user_id: uuid.UUID) -> tuple[int, int]:
    """sum(amount) == balance and sum(reserved_delta) == reserved; returns (balance, reserved)."""
    session.expire_all()
    account = session.get(CreditAccount, user_id)
    balance, reserved = (account.balance, account.reserved) if account else (0, 0)
    assert CreditRepository(session).entry_sums(user_id) == (balance, reserved)
    assert 0 <= reserved <= balance
    return balance, reserved


def count_entries(session: Session, user_id: uuid.UUID, kind: EntryKind) -> int:
    statement = select(func.count()).where(CreditEntry.user_id == user_id, CreditEntry.kind == kind)
    return int(session.scalar(statement) or 0)


def job_body(upload: Upload, *targets: str, **extra: Any) -> dict[str, Any]:
    return {"upload_id": upload.id, "target_languages": list(targets or ("es", "pt")), **extra}


@dataclass
class Harness:
    """The API (TestClient), the reconciler and the fake cluster on one test transaction."""

    client: TestClient
    session: Session
    settings: Settings
    runner: FakeRunner
    reconciler: Reconciler

    def create(self, user: TestUser, upload: Upload, *targets: str, **extra: Any) -> dict[str, Any]:
        response = self.client.post("/v1/jobs", json=job_body(upload, *targets, **extra), headers=user.headers)
        assert response.status_code == 201, response.text
        return dict(response.json())

    def get(self, user: TestUser, job_id: str) -> dict[str, Any]:
        response = self.client.get(f"/v1/jobs/{job_id}", headers=user.headers)
        assert response.status_code == 200, response.text
        return dict(response.json())

    def tick(self, now: datetime | None = None) -> TickReport:
        report = self.reconciler.tick(now)
        self.session.expire_all()
        return report

    def spec(self, job_id: str) -> JobSpec:
        """The latest Ray submission of the job."""
        hex_id = uuid.UUID(job_id).hex
        return [job.spec for job in self.runner.jobs.values() if f"-{hex_id}-" in job.spec.submission_id][-1]

    def progress(self, job_id: str, spec: JobSpec, **payload: Any) -> Any:
        return self.client.post(f"/internal/jobs/{job_id}/progress", json=payload, headers=bearer(spec))

    def start(self, job_id: str) -> JobSpec:
        """Submits the job (one tick) and lets Ray run it (another tick): the job is `running`."""
        self.tick()
        spec = self.spec(job_id)
        self.runner.set(spec.submission_id, RayJobState.RUNNING)
        self.tick()
        return spec

    def succeed(self, user: TestUser, job_id: str, upload: Upload, *, media_duration: float | None = None) -> JobSpec:
        """A whole successful run: progress, outputs, the pipeline's final report, Ray's SUCCEEDED, a tick."""
        spec = self.start(job_id)
        job = self.get(user, job_id)
        assert self.progress(job_id, spec, stage="analyze", progress=40.0, eta_seconds=30.0).status_code == 200
        assert self.progress(job_id, spec, stage="synthesize:es", progress=80.0, eta_seconds=8.0).status_code == 200
        write_outputs(spec, upload.id, job["target_languages"])
        final = {"stage": "done", "progress": 100.0, "status": "succeeded", "media_duration": media_duration}
        assert self.progress(job_id, spec, **final).status_code == 200
        self.runner.set(spec.submission_id, RayJobState.SUCCEEDED, "Job finished successfully.")
        self.tick()
        assert self.get(user, job_id)["status"] == "succeeded"
        return spec


def make_harness(
    client: TestClient, session: Session, settings: Settings, session_factory: sessionmaker[Session]
) -> Harness:
    runner = FakeRunner()
    return Harness(client, session, settings, runner, Reconciler(settings, session_factory, runner))

"""Jobs: creation (validation, estimate, credit hold, idempotency), reading, cancel, retry, artifacts, the
pipeline's progress reports, and the state changes the reconciler applies. Nothing here commits, and nothing here
talks to Ray: the API only records intent (a queued job, a cancel request) and the reconciler acts on it.

Credits: creating (or retrying) a job reserves `estimate(upload duration, targets)` for that run; success captures
the estimate for the duration the pipeline measured (at most the hold) and releases the rest; failure and cancel
release everything. Capture and release are idempotent per reservation, and each finish happens in the
transaction that marks the job final, so a crash and a second pass never charge twice.

Files: a finished job can be deleted (its row stays, hidden, for the ledger); the worker removes the files of
deleted jobs and of jobs finished more than OCTAVIA_JOBS_ARTIFACT_RETENTION_DAYS ago (`remove_due_files`). Whether
an artifact may be downloaded is decided from the times, not from whether the sweep has run yet.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from control_plane import metrics
from control_plane.config import Settings
from control_plane.credits import service as credits
from control_plane.db import utcnow
from control_plane.errors import ApiError, ConflictError, InvalidRequestError, ResourceNotFoundError
from control_plane.jobs import artifacts
from control_plane.jobs.models import Job, JobEventKind, JobStatus
from control_plane.jobs.ray_runner import PROGRESS_TOKEN_ENV, JobSpec
from control_plane.jobs.repository import JobRepository
from control_plane.jobs.schemas import JobCreate, ProgressReport
from control_plane.pagination import PageParams
from control_plane.uploads import service as uploads
from control_plane.uploads.models import Upload
from control_plane.webhooks.service import emit_event
from octavia.languages import normalize

logger = logging.getLogger("control_plane.jobs")

_ERROR_MESSAGE_LIMIT = 1000


class JobNotFoundError(ResourceNotFoundError):
    code = "job_not_found"


class JobFinishedError(ConflictError):
    code = "job_finished"


class JobNotRetryableError(ConflictError):
    code = "job_not_retryable"


class JobNotSucceededError(ConflictError):
    code = "job_not_succeeded"


class ArtifactNotFoundError(ResourceNotFoundError):
    code = "artifact_not_found"


class JobNotFinishedError(ConflictError):
    code = "job_not_finished"


class ArtifactsExpiredError(ApiError):
    status_code = 410
    code = "artifacts_expired"


class TooManyLanguagesError(InvalidRequestError):
    code = "too_many_languages"


class IdempotencyKeyReusedError(InvalidRequestError):
    code = "idempotency_key_reused"


class InvalidProgressTokenError(ApiError):
    status_code = 401
    code = "invalid_progress_token"

    def __init__(self) -> None:
        super().__init__("unknown job or wrong progress token", headers={"WWW-Authenticate": "Bearer"})


# --- the API -----------------------------------------------------------------------------------------------------


def normalize_targets(settings: Settings, codes: list[str]) -> list[str]:
    """ISO 639-1, de-duplicated in the given order, 1..OCTAVIA_JOBS_MAX_TARGET_LANGUAGES (422 otherwise)."""
    targets = list(dict.fromkeys(normalize(code) for code in codes))
    if len(targets) > settings.jobs_max_target_languages:
        raise TooManyLanguagesError(
            f"at most {settings.jobs_max_target_languages} target languages per job, got {len(targets)}",
            details={"max": settings.jobs_max_target_languages, "target_languages": targets},
        )
    return targets


def normalize_source(code: str | None) -> str | None:
    return None if code is None or code.strip().lower() == "auto" else normalize(code)


def request_hash(body: JobCreate) -> str:
    """The body after validation and defaults, canonical JSON: the same request however it was spelled."""
    canonical = json.dumps(body.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def _insufficient(exc: credits.InsufficientCreditsError, estimate: credits.Estimate) -> ApiError:
    exc.details["estimate"] = {
        "credits": estimate.credits,
        "started_minutes": estimate.started_minutes,
        "target_languages": estimate.target_languages,
        "credits_per_minute": estimate.credits_per_minute,
    }
    return exc


def _replay(existing: Job, body_hash: str, key: str) -> Job:
    if existing.request_hash != body_hash:
        raise IdempotencyKeyReusedError(
            "this Idempotency-Key was used with a different request body",
            details={"idempotency_key": key, "job_id": str(existing.id)},
        )
    return existing


def create_job(
    session: Session, settings: Settings, user_id: uuid.UUID, body: JobCreate, idempotency_key: str | None = None
) -> tuple[Job, bool]:
    """A queued job with its credit hold; returns (job, replayed). With an `Idempotency-Key` seen before: the same
    job if the body is the same, 422 otherwise."""
    repository = JobRepository(session)
    body_hash = request_hash(body)
    if idempotency_key is not None:
        existing = repository.get_by_idempotency_key(user_id, idempotency_key)
        if existing is not None:
            return _replay(existing, body_hash, idempotency_key), True
    targets = normalize_targets(settings, body.target_languages)
    source = normalize_source(body.source_language)
    upload = uploads.get_ready_upload(session, user_id, body.upload_id)
    estimate = credits.estimate(settings, _duration(upload), targets)
    job = Job(
        id=uuid.uuid4(),
        user_id=user_id,
        upload_id=upload.id,
        status=JobStatus.QUEUED,
        source_language=source,
        target_languages=targets,
        options=body.options.model_dump(mode="json"),
        idempotency_key=idempotency_key,
        request_hash=body_hash,
        reserved_credits=estimate.credits,
    )
    if idempotency_key is None:
        repository.add(job)  # nothing to race on: no savepoint (two round trips)
    else:
        try:
            with session.begin_nested():  # a concurrent request with the same key loses here, cleanly
                repository.add(job)
        except IntegrityError:
            existing = repository.get_by_idempotency_key(user_id, idempotency_key)
            if existing is None:
                raise
            return _replay(existing, body_hash, idempotency_key), True
    _status_event(repository, job)
    # Last: the reservation locks the user's credit account until commit, and every job of that user waits on it.
    try:
        job.reservation_id = credits.reserve(session, user_id, estimate.credits, job.job_ref).id
    except credits.InsufficientCreditsError as exc:
        raise _insufficient(exc, estimate) from None  # rolls the job back with the request
    return job, False


def get_job(session: Session, user_id: uuid.UUID, job_id: uuid.UUID, *, for_update: bool = False) -> Job:
    """The user's job; another user's is a 404 like an unknown one."""
    job = JobRepository(session).get_for_user(user_id, job_id, for_update=for_update)
    if job is None:
        raise JobNotFoundError("no such job", details={"job_id": str(job_id)})
    return job


def list_jobs(
    session: Session, user_id: uuid.UUID, params: PageParams, status: JobStatus | None = None
) -> tuple[list[Job], str | None]:
    return JobRepository(session).list_for_user(user_id, params, status)


def cancel_job(
    session: Session, settings: Settings, user_id: uuid.UUID, job_id: uuid.UUID, *, now: datetime | None = None
) -> Job:
    """A job not yet sent to Ray is canceled at once (credits released); one on Ray is marked, and the reconciler
    stops the Ray job and finishes it as canceled. 409 for a finished job."""
    now = now or utcnow()
    job = get_job(session, user_id, job_id, for_update=True)
    if job.status.is_final:
        raise JobFinishedError(
            f"job is already {job.status.value}", details={"job_id": str(job.id), "status": job.status.value}
        )
    if job.cancel_requested:
        return job
    job.cancel_requested_at = now
    if job.ray_job_id is None:
        finish_job(session, settings, job, JobStatus.CANCELED, now=now)
    else:
        _status_event(JobRepository(session), job)
    session.flush()
    return job


def retry_job(session: Session, settings: Settings, user_id: uuid.UUID, job_id: uuid.UUID) -> Job:
    """A failed or canceled job runs again from the start: a new run with a new credit hold (402 if short)."""
    repository = JobRepository(session)
    job = get_job(session, user_id, job_id, for_update=True)
    if job.status not in (JobStatus.FAILED, JobStatus.CANCELED):
        raise JobNotRetryableError(
            f"only failed or canceled jobs can be retried; this one is {job.status.value}",
            details={"job_id": str(job.id), "status": job.status.value},
        )
    upload = uploads.get_ready_upload(session, user_id, job.upload_id)
    estimate = credits.estimate(settings, _duration(upload), list(job.target_languages))
    job.runs += 1
    try:
        reservation = credits.reserve(session, user_id, estimate.credits, job.job_ref)
    except credits.InsufficientCreditsError as exc:
        raise _insufficient(exc, estimate) from None
    job.status = JobStatus.QUEUED
    job.reservation_id, job.reserved_credits, job.charged_credits = reservation.id, estimate.credits, None
    job.stage, job.progress, job.eta_seconds, job.error_code, job.error_message = None, 0.0, None, None, None
    job.media_duration, job.run_attempts, job.ray_job_id, job.ray_seen_at = None, 0, None, None
    job.warnings = None
    job.progress_token_hash, job.reported_status, job.cancel_requested_at = None, None, None
    job.submitted_at, job.started_at, job.last_progress_at, job.finished_at = None, None, None, None
    job.files_removed_at = None  # the new run writes a new folder
    _status_event(repository, job)
    session.flush()
    return job


def delete_job(session: Session, user_id: uuid.UUID, job_id: uuid.UUID, *, now: datetime | None = None) -> None:
    """A finished job disappears from the API at once; the worker removes its files on its next tick. The row
    stays for the credit ledger; its Idempotency-Key is freed and its event log dropped. 409 for a queued or
    running job (cancel it first)."""
    job = get_job(session, user_id, job_id, for_update=True)
    if not job.status.is_final:
        raise JobNotFinishedError(
            f"job is {job.status.value}; cancel it and delete it once it is canceled",
            details={"job_id": str(job.id), "status": job.status.value},
        )
    job.deleted_at = now or utcnow()
    job.idempotency_key, job.request_hash = None, None
    JobRepository(session).delete_events(job.id)
    session.flush()


def list_job_artifacts(
    session: Session, settings: Settings, user_id: uuid.UUID, job_id: uuid.UUID
) -> list[artifacts.Artifact]:
    """The outputs of a succeeded job (409 before: files of a run in progress are incomplete; 410 after the
    retention)."""
    job = get_job(session, user_id, job_id)
    if job.status is not JobStatus.SUCCEEDED:
        raise JobNotSucceededError(
            f"artifacts are available once the job succeeded; it is {job.status.value}",
            details={"job_id": str(job.id), "status": job.status.value},
        )
    expired_at = job.files_removed_at or job.artifacts_expire_at(settings.jobs_artifact_retention)
    if expired_at is not None and expired_at <= utcnow():
        raise ArtifactsExpiredError(
            "this job's files were removed after the retention period",
            details={"job_id": str(job.id), "expired_at": expired_at.isoformat()},
        )
    return artifacts.list_artifacts(artifacts.out_dir(settings.data_dir, job.id))


def get_job_artifact(
    session: Session, settings: Settings, user_id: uuid.UUID, job_id: uuid.UUID, name: str
) -> tuple[artifacts.Artifact, str]:
    """(the artifact called `name` in the listing, the file name to offer); 404 for any other name."""
    listed = {a.name: a for a in list_job_artifacts(session, settings, user_id, job_id)}
    artifact = listed.get(name)
    if artifact is None:
        raise ArtifactNotFoundError("no such artifact", details={"name": name[:255], "available": sorted(listed)})
    job = get_job(session, user_id, job_id)
    upload = session.get(Upload, job.upload_id)
    return artifact, artifacts.download_name(artifact.name, job.upload_id, upload.filename if upload else None)


def remove_due_files(session: Session, settings: Settings, now: datetime | None = None, *, limit: int = 100) -> int:
    """Removes the files of deleted jobs and of jobs past the retention; returns how many jobs. For the worker
    loop (the caller commits). Removal comes first: a crash before the commit leaves the job due, and removing
    a removed folder again is harmless."""
    now = now or utcnow()
    retention = settings.jobs_artifact_retention
    due = JobRepository(session).with_files_to_remove(now - retention if retention else None, limit)
    for job in due:
        artifacts.remove_job_files(settings.data_dir, job.id)
        job.files_removed_at = now
        reason: metrics.FilesRemovedReason = "deleted" if job.deleted_at else "expired"
        metrics.record_job_files_removed(reason)
        logger.info("removed the files of job %s (%s)", job.id, reason)
    session.flush()
    return len(due)


# --- the pipeline's progress channel -----------------------------------------------------------------------------


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class ProgressOutcome:
    job: Job
    accepted: bool


def record_progress(
    session: Session, job_id: uuid.UUID, token: str, report: ProgressReport, *, now: datetime | None = None
) -> ProgressOutcome:
    """Applies a report of the current attempt (its token; 401 otherwise). A finished job ignores it. A final
    report is recorded, not acted on: the job finishes when Ray says the process ended."""
    now = now or utcnow()
    repository = JobRepository(session)
    job = repository.get(job_id, for_update=True)
    if (
        job is None
        or job.progress_token_hash is None
        or not hmac.compare_digest(hash_token(token), job.progress_token_hash)
    ):
        raise InvalidProgressTokenError()
    if job.status.is_final:
        return ProgressOutcome(job, accepted=False)
    mark_running(session, job, now)  # a report proves the run started, even before Ray's RUNNING was polled
    if report.stage:
        job.stage = report.stage
    if report.progress is not None:
        job.progress = min(100.0, max(0.0, report.progress))
    job.eta_seconds = report.eta_seconds
    job.last_progress_at = now
    if report.media_duration is not None:
        job.media_duration = report.media_duration
    if report.warnings:
        job.warnings = list(report.warnings)
    if report.status != "running":
        job.reported_status = report.status
        if report.status == "failed":
            error = report.error
            job.error_code = error.code if error else "pipeline_failed"
            job.error_message = _clip(error.message if error and error.message else "the pipeline reported a failure")
    repository.add_event(
        job.id, JobEventKind.PROGRESS, {"stage": job.stage, "progress": job.progress, "eta_seconds": job.eta_seconds}
    )
    session.flush()
    return ProgressOutcome(job, accepted=True)


# --- state changes the reconciler applies ------------------------------------------------------------------------


def new_attempt_spec(
    session: Session, settings: Settings, job: Job, *, now: datetime, same_attempt: bool = False
) -> JobSpec:
    """Records the next Ray attempt (or a re-send of the current one that Ray never got) before it is submitted:
    a deterministic submission id and a fresh progress token, whose hash only is stored."""
    upload = session.get(Upload, job.upload_id)
    if upload is None:  # unreachable: the foreign key cascades
        raise RuntimeError(f"job {job.id} has no upload")
    if not same_attempt or job.ray_job_id is None:
        job.attempt += 1
        job.run_attempts += 1
        job.ray_job_id = f"octavia-job-{job.id.hex}-{job.attempt}"
        job.reported_status = None
        job.ray_seen_at = None
        job.last_progress_at = None
        job.stage, job.progress, job.eta_seconds = "submitted", 0.0, None
        out = artifacts.reset_out_dir(settings.data_dir, job.id)
    else:
        out = artifacts.out_dir(settings.data_dir, job.id)
        out.mkdir(parents=True, exist_ok=True)
    token = secrets.token_urlsafe(32)
    job.progress_token_hash = hash_token(token)
    job.submitted_at = now
    session.flush()
    return JobSpec(
        submission_id=job.ray_job_id,
        arguments=pipeline_arguments(settings, job, Path(upload.storage_path), out),
        env={PROGRESS_TOKEN_ENV: token},
        metadata={
            "job_id": str(job.id),
            "user_id": str(job.user_id),
            "job_name": f"octavia dub {job.id.hex[:8]} -> {','.join(job.target_languages)} (attempt {job.attempt})",
        },
    )


def pipeline_arguments(settings: Settings, job: Job, input_path: Path, out: Path) -> tuple[str, ...]:
    """`python -m pipeline.job` arguments (the progress token goes in the environment, not here)."""
    options = job.options
    arguments = [
        "--input", str(input_path),
        "--to", ",".join(job.target_languages),
        "--out", str(out),
        "--from", job.source_language or "auto",
        "--profile", str(options.get("profile", "auto")),
        "--speakers", str(options.get("speakers", "auto")),
        "--separation", str(options.get("separation", "auto")),
    ]  # fmt: skip
    if options.get("keep_original_audio"):
        arguments.append("--keep-original-audio")
    if options.get("burn_subtitles"):
        arguments.append("--burn-subtitles")
    arguments += ["--progress-url", f"{settings.progress_base_url}/internal/jobs/{job.id}/progress"]
    return tuple(arguments)


def mark_running(session: Session, job: Job, now: datetime) -> None:
    if job.status is not JobStatus.QUEUED:
        return
    job.status = JobStatus.RUNNING
    job.started_at = job.started_at or now
    job.stage = job.stage if job.stage not in (None, "submitted") else "starting"
    _status_event(JobRepository(session), job)


def finish_job(
    session: Session,
    settings: Settings,
    job: Job,
    status: JobStatus,
    *,
    now: datetime,
    error_code: str | None = None,
    error_message: str | None = None,
) -> None:
    """Marks the job final, settles its credits, queues the webhook event and the SSE status event — one
    transaction (the caller's), so either all of it happens or none."""
    if not status.is_final:
        raise ValueError(f"{status} is not a final status")
    # Locked: a termination of the upload running meanwhile then sees this job final, or this sees it deleted.
    upload = session.get(Upload, job.upload_id, with_for_update=True, populate_existing=True)
    names: list[str] = []
    if status is JobStatus.SUCCEEDED:
        duration = job.media_duration or (upload.media_duration if upload else None) or 0.0
        used = credits.estimate(settings, duration, list(job.target_languages)).credits if duration > 0 else 0
        used = min(used, job.reserved_credits)
        if job.reservation_id is not None:
            credits.capture(session, job.reservation_id, used)
        job.charged_credits = used
        job.progress, job.stage, job.error_code, job.error_message = 100.0, "done", None, None
        names = [a.name for a in artifacts.list_artifacts(artifacts.out_dir(settings.data_dir, job.id))]
    else:
        if job.reservation_id is not None:
            credits.release(session, job.reservation_id)
        if error_code is not None:
            job.error_code, job.error_message = error_code, _clip(error_message or error_code)
        elif status is JobStatus.CANCELED:
            job.error_code, job.error_message = None, None
    job.status = status
    job.finished_at = now
    job.eta_seconds = None
    job.progress_token_hash = None  # late reports of this run are refused from now on
    session.flush()
    if upload is not None:
        uploads.remove_deleted_file(session, upload)  # deleted while this job still read it
    emit_event(
        session, job.user_id, f"job.{status.value}", webhook_data(job, names, settings.jobs_artifact_retention), now=now
    )
    _status_event(JobRepository(session), job)
    queue_wait = (job.started_at - job.created_at).total_seconds() if job.started_at else None
    duration_s = (now - job.started_at).total_seconds() if job.started_at else None
    metrics.observe_job_finished(status.value, queue_wait, duration_s)


def webhook_data(job: Job, artifact_names: list[str], retention: timedelta | None) -> dict[str, Any]:
    error = {"code": job.error_code, "message": job.error_message} if job.error_code else None
    expires_at = job.artifacts_expire_at(retention)
    return {
        "job_id": str(job.id),
        "status": job.status.value,
        "upload_id": job.upload_id,
        "target_languages": list(job.target_languages),
        "charged_credits": job.charged_credits,
        "error": error,
        "artifacts": artifact_names,
        "artifacts_expire_at": expires_at.isoformat() if expires_at else None,
    }


def _status_event(repository: JobRepository, job: Job) -> None:
    error = {"code": job.error_code, "message": job.error_message} if job.error_code else None
    repository.add_event(
        job.id,
        JobEventKind.STATUS,
        {
            "status": job.status.value,
            "stage": job.stage,
            "progress": job.progress,
            "error": error,
            "cancel_requested": job.cancel_requested,
        },
    )


def _duration(upload: Upload) -> float:
    if not upload.media_duration or upload.media_duration <= 0:
        raise uploads.UploadNotReadyError(
            f"upload {upload.id} has no measured duration", details={"upload_id": upload.id}
        )
    return upload.media_duration


def _clip(message: str) -> str:
    return message if len(message) <= _ERROR_MESSAGE_LIMIT else message[: _ERROR_MESSAGE_LIMIT - 1] + "…"

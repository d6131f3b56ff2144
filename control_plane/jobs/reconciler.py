"""The jobs reconciler and the background worker that runs it.

`Reconciler.tick()` compares what the database says with what Ray says and moves each job one step:

- queued, not sent: up to OCTAVIA_JOBS_MAX_RUNNING jobs at once get an attempt recorded (deterministic submission
  id + fresh progress token, committed) and are then submitted;
- sent: Ray's state decides — PENDING waits; RUNNING marks the job running (and a run silent for
  OCTAVIA_JOBS_STALE_SECONDS is stopped and retried); SUCCEEDED with every language's media present succeeds
  (credits captured); FAILED after the pipeline reported a failure fails (not retried: bad input, unsupported
  pair, ...); FAILED otherwise, a lost job or missing outputs are infrastructure failures, retried up to
  OCTAVIA_JOBS_MAX_ATTEMPTS; STOPPED after a cancel request — or anything once canceled — is canceled;
- then the housekeeping: due webhook deliveries, the uploads' expiry sweep, the files of deleted jobs and of
  jobs past OCTAVIA_JOBS_ARTIFACT_RETENTION_DAYS, the jobs-by-status gauge.

Crash safety: Ray calls happen outside transactions; each job's change is one short transaction that locks the row
and re-checks it still is in the state the Ray answer was about. The attempt is committed before it is submitted
(a restarted worker finds the Ray job by its id, or re-sends it once Ray still has nothing after
`SUBMIT_GRACE`); finishing settles credits in the same transaction as the status. Any crash, then a new worker:
no job submitted twice, no credit captured twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import Session, sessionmaker

from control_plane import metrics
from control_plane.config import Settings
from control_plane.db import utcnow
from control_plane.jobs import artifacts, service
from control_plane.jobs.models import Job, JobStatus
from control_plane.jobs.ray_runner import (
    JobRunner,
    JobSpec,
    RayJobRunner,
    RayJobState,
    RunnerStatus,
    RunnerUnavailableError,
)
from control_plane.jobs.repository import JobRepository

logger = logging.getLogger("control_plane.jobs")

# A recorded attempt Ray has never heard of is re-sent only after this long: the worker that recorded it may be
# submitting it right now.
SUBMIT_GRACE = timedelta(seconds=30)


@dataclass
class TickReport:
    submitted: int = 0
    polled: int = 0
    finished: int = 0
    retried: int = 0
    unavailable: int = 0
    webhooks_attempted: int = 0
    uploads_swept: int = 0
    job_files_removed: int = 0


@dataclass(frozen=True)
class _Snapshot:
    job_id: uuid.UUID
    ray_job_id: str
    status: JobStatus
    cancel_requested: bool
    last_activity: datetime | None


class Reconciler:
    def __init__(self, settings: Settings, session_factory: sessionmaker[Session], runner: JobRunner) -> None:
        self.settings = settings
        self.session_factory = session_factory
        self.runner = runner

    def tick(self, now: datetime | None = None) -> TickReport:
        """One pass over every active job, then the housekeeping. Errors of one job are logged and skipped."""
        now = now or utcnow()
        report = TickReport()
        with self.session_factory() as session:
            polled = JobRepository(session).submitted_active_ids()
        for job_id in polled:
            self._guard(f"job {job_id}", self._reconcile, job_id, now, report)
        self._guard("submission", self._submit_queued, now, report)
        self._guard("webhook delivery", self._deliver_webhooks, now, report)
        self._guard("upload sweep", self._sweep_uploads, now, report)
        self._guard("job files", self._remove_job_files, now, report)
        self._guard("metrics", self._record_metrics)
        return report

    # --- per job -------------------------------------------------------------------------------------------------

    def _reconcile(self, job_id: uuid.UUID, now: datetime, report: TickReport) -> None:
        snapshot = self._snapshot(job_id)
        if snapshot is None:
            return
        report.polled += 1
        if snapshot.cancel_requested:
            self.runner.stop(snapshot.ray_job_id)
        try:
            ray = self.runner.status(snapshot.ray_job_id)
        except RunnerUnavailableError as exc:
            report.unavailable += 1
            logger.warning("job %s: %s", job_id, exc)
            return
        stale = (
            ray.state is RayJobState.RUNNING
            and not snapshot.cancel_requested
            and snapshot.last_activity is not None
            and now - snapshot.last_activity > timedelta(seconds=self.settings.jobs_stale_seconds)
        )
        if stale:
            self.runner.stop(snapshot.ray_job_id)
        spec = None
        with self.session_factory.begin() as session:
            job = JobRepository(session).get(job_id, for_update=True, skip_locked=True)
            if job is None or job.ray_job_id != snapshot.ray_job_id or job.status.is_final:
                return  # changed since the snapshot (another worker, a retry, a cancel): next tick sees it
            spec = self._apply(session, job, ray, now, report, stale=stale)
        if spec is not None:
            self._send(spec, report)

    def _apply(
        self, session: Session, job: Job, ray: RunnerStatus, now: datetime, report: TickReport, *, stale: bool
    ) -> JobSpec | None:
        """The state change for Ray's answer, in the job's transaction; returns an attempt to submit, if any."""
        state = ray.state
        if state is not RayJobState.NOT_FOUND:
            job.ray_seen_at = now
        if job.cancel_requested:
            if state in (RayJobState.PENDING, RayJobState.RUNNING):
                return None  # stop was asked above; finish when Ray has stopped it
            self._finish(session, job, JobStatus.CANCELED, now, report)
            return None
        if state is RayJobState.PENDING:
            return None
        if state is RayJobState.RUNNING:
            service.mark_running(session, job, now)
            if job.last_progress_at is None:
                job.last_progress_at = now  # the attempt's first sign of life: staleness counts from here
            if stale:
                silent = int(self.settings.jobs_stale_seconds)
                return self._infrastructure_failure(session, job, now, report, "stale", f"no progress for {silent} s")
            return None
        if state is RayJobState.SUCCEEDED:
            if job.reported_status == "failed":
                self._finish_reported_failure(session, job, now, report)
                return None
            missing = artifacts.missing_outputs(artifacts.out_dir(self.settings.data_dir, job.id), job.target_languages)
            if missing:
                message = f"the run ended without outputs for {', '.join(missing)}"
                return self._infrastructure_failure(session, job, now, report, "artifacts_missing", message)
            self._finish(session, job, JobStatus.SUCCEEDED, now, report)
            return None
        if state is RayJobState.FAILED:
            if job.reported_status == "failed":
                self._finish_reported_failure(session, job, now, report)
                return None
            return self._infrastructure_failure(session, job, now, report, "infrastructure_error", ray.message)
        if state is RayJobState.STOPPED:
            message = "the Ray job was stopped outside Octavia"
            self._finish(session, job, JobStatus.FAILED, now, report, "stopped", message)
            return None
        # NOT_FOUND: never reached Ray (crash or error before the submission), or the cluster lost it.
        if job.ray_seen_at is None:
            if job.submitted_at is not None and now - job.submitted_at < SUBMIT_GRACE:
                return None
            return service.new_attempt_spec(session, self.settings, job, now=now, same_attempt=True)
        message = "the Ray cluster lost the job (restarted?)"
        return self._infrastructure_failure(session, job, now, report, "infrastructure_error", message)

    def _finish_reported_failure(self, session: Session, job: Job, now: datetime, report: TickReport) -> None:
        self._finish(
            session, job, JobStatus.FAILED, now, report, job.error_code or "pipeline_failed", job.error_message
        )

    def _infrastructure_failure(
        self, session: Session, job: Job, now: datetime, report: TickReport, code: str, message: str
    ) -> JobSpec | None:
        if job.run_attempts < self.settings.jobs_max_attempts:
            logger.warning("job %s attempt %d failed (%s: %s); retrying", job.id, job.attempt, code, message[-300:])
            report.retried += 1
            return service.new_attempt_spec(session, self.settings, job, now=now)
        attempts = f"after {job.run_attempts} attempt{'s' if job.run_attempts > 1 else ''}"
        self._finish(session, job, JobStatus.FAILED, now, report, code, f"{message} ({attempts})")
        return None

    def _finish(
        self,
        session: Session,
        job: Job,
        status: JobStatus,
        now: datetime,
        report: TickReport,
        error_code: str | None = None,
        error_message: str | None = None,
    ) -> None:
        service.finish_job(
            session, self.settings, job, status, now=now, error_code=error_code, error_message=error_message
        )
        report.finished += 1
        logger.info("job %s %s", job.id, status.value)

    # --- submission ------------------------------------------------------------------------------------------------

    def _submit_queued(self, now: datetime, report: TickReport) -> None:
        with self.session_factory() as session:
            in_flight = len(JobRepository(session).submitted_active_ids())
            free = self.settings.jobs_max_running - in_flight
            candidates = JobRepository(session).unsubmitted_ids(free) if free > 0 else []
        for job_id in candidates:
            with self.session_factory.begin() as session:
                job = JobRepository(session).get(job_id, for_update=True, skip_locked=True)
                if job is None or job.status is not JobStatus.QUEUED or job.ray_job_id or job.cancel_requested:
                    continue
                spec = service.new_attempt_spec(session, self.settings, job, now=now)
            self._send(spec, report)

    def _send(self, spec: JobSpec, report: TickReport) -> None:
        try:
            self.runner.submit(spec)
        except RunnerUnavailableError as exc:
            # The attempt stays recorded: once SUBMIT_GRACE has passed with Ray knowing nothing, it is re-sent.
            report.unavailable += 1
            logger.warning("submitting %s failed: %s", spec.submission_id, exc)
            return
        report.submitted += 1
        logger.info("submitted Ray job %s", spec.submission_id)

    def _snapshot(self, job_id: uuid.UUID) -> _Snapshot | None:
        with self.session_factory() as session:
            job = JobRepository(session).get(job_id)
            if job is None or job.ray_job_id is None or job.status.is_final:
                return None
            return _Snapshot(
                job_id=job.id,
                ray_job_id=job.ray_job_id,
                status=job.status,
                cancel_requested=job.cancel_requested,
                last_activity=job.last_progress_at,
            )

    # --- housekeeping --------------------------------------------------------------------------------------------

    def _deliver_webhooks(self, now: datetime, report: TickReport) -> None:
        from control_plane.webhooks.delivery import deliver_due

        report.webhooks_attempted = deliver_due(self.session_factory, now=now, settings=self.settings)

    def _sweep_uploads(self, now: datetime, report: TickReport) -> None:
        from control_plane.uploads.service import sweep_expired

        with self.session_factory.begin() as session:
            report.uploads_swept = sweep_expired(session, now)

    def _remove_job_files(self, now: datetime, report: TickReport) -> None:
        with self.session_factory.begin() as session:
            report.job_files_removed = service.remove_due_files(session, self.settings, now)

    def _record_metrics(self) -> None:
        with self.session_factory() as session:
            metrics.set_jobs_by_status(JobRepository(session).count_by_status())

    @staticmethod
    def _guard(what: str, step: Callable[..., None], *args: object) -> None:
        try:
            step(*args)
        except RunnerUnavailableError as exc:
            logger.warning("%s: %s", what, exc)
        except Exception:
            logger.exception("%s failed; next tick tries again", what)


class JobsWorker:
    """Runs `Reconciler.tick` every OCTAVIA_JOBS_WORKER_INTERVAL_SECONDS in a thread, from the app's lifespan."""

    def __init__(self, reconciler: Reconciler, interval_seconds: float) -> None:
        self.reconciler = reconciler
        self.interval_seconds = interval_seconds
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="octavia-jobs-worker")

    async def stop(self) -> None:
        """Lets the current tick finish (its Ray calls are bounded by OCTAVIA_JOBS_RAY_TIMEOUT_SECONDS)."""
        self._stopping.set()
        if self._task is not None:
            await self._task

    async def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                await asyncio.to_thread(self.reconciler.tick)
            except Exception:  # tick guards its steps; this is the last line
                logger.exception("jobs worker tick crashed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), timeout=self.interval_seconds)


def runner_from_settings(settings: Settings) -> JobRunner:
    return RayJobRunner(
        settings.ray_address, settings.jobs_entrypoint, timeout_seconds=settings.jobs_ray_timeout_seconds
    )

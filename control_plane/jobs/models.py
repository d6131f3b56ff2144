"""Dub jobs and their event log.

Life cycle (`status`): `queued` (waiting for a slot, or submitted and waiting for the cluster) → `running` (Ray
runs the pipeline) → `succeeded` | `failed` | `canceled`. A failed or canceled job can be retried: it goes back to
`queued` as a new run with a new credit reservation.

Each Ray submission is an *attempt* with the deterministic submission id `octavia-job-<job id hex>-<attempt>`,
written here before the submission is sent, so a control plane that crashed in between finds the Ray job again
instead of submitting a second one. Each attempt gets a fresh progress token (only its SHA-256 is stored).

A finished job's files (`DATA_DIR/jobs/<id>`) are removed by the jobs worker once the job is deleted
(`deleted_at`: the row stays for the credit ledger, hidden from the API) or once OCTAVIA_JOBS_ARTIFACT_RETENTION_DAYS
have passed since it finished; `files_removed_at` records that it was done.

`job_events` is the ordered log behind `GET /v1/jobs/{id}/events` (SSE): progress reports and status changes,
written in the transaction that makes the change.
"""

from __future__ import annotations

import enum
import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    Enum,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from control_plane.db import Base, CreatedAt, utcnow

# SQLite only auto-increments INTEGER PRIMARY KEY.
BigIntegerId = BigInteger().with_variant(Integer(), "sqlite")


class JobStatus(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELED = "canceled"

    @property
    def is_final(self) -> bool:
        return self in FINAL_STATUSES


FINAL_STATUSES = frozenset({JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELED})
ACTIVE_STATUSES = (JobStatus.QUEUED, JobStatus.RUNNING)


class JobEventKind(enum.StrEnum):
    PROGRESS = "progress"
    STATUS = "status"


def _values(enum_class: type[enum.Enum]) -> list[str]:
    return [str(member.value) for member in enum_class]


class Job(CreatedAt, Base):
    __tablename__ = "jobs"
    __table_args__ = (
        # NULL keys never collide (both backends), so jobs without a key are unconstrained.
        UniqueConstraint("user_id", "idempotency_key", name="uq_jobs_user_id_idempotency_key"),
        Index("ix_jobs_user_id_created_at", "user_id", "created_at"),
        Index("ix_jobs_status_created_at", "status", "created_at"),
        Index("ix_jobs_files_removed_at_finished_at", "files_removed_at", "finished_at"),
        CheckConstraint("progress >= 0 AND progress <= 100", name="progress_range"),
        CheckConstraint("reserved_credits >= 0", name="reserved_credits_not_negative"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4, sort_order=-10)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    upload_id: Mapped[str] = mapped_column(ForeignKey("uploads.id", ondelete="CASCADE"), index=True)
    status: Mapped[JobStatus] = mapped_column(
        Enum(JobStatus, native_enum=False, length=16, values_callable=_values), default=JobStatus.QUEUED
    )
    stage: Mapped[str | None] = mapped_column(String(64), default=None)
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    eta_seconds: Mapped[float | None] = mapped_column(Float, default=None)
    error_code: Mapped[str | None] = mapped_column(String(64), default=None)
    error_message: Mapped[str | None] = mapped_column(String(1000), default=None)

    # The request, normalised: ISO 639-1 codes, options with their defaults filled in.
    source_language: Mapped[str | None] = mapped_column(String(8), default=None)
    target_languages: Mapped[list[str]] = mapped_column(JSON)
    options: Mapped[dict[str, Any]] = mapped_column(JSON)
    idempotency_key: Mapped[str | None] = mapped_column(String(255), default=None)
    request_hash: Mapped[str | None] = mapped_column(String(64), default=None)

    # Credits of the current run: the hold, and what was charged when it succeeded.
    reservation_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("credit_reservations.id", ondelete="SET NULL"), default=None
    )
    reserved_credits: Mapped[int] = mapped_column(BigInteger, default=0)
    charged_credits: Mapped[int | None] = mapped_column(BigInteger, default=None)
    # What the pipeline measured (seconds); the charge uses it, falling back to the upload's probe.
    media_duration: Mapped[float | None] = mapped_column(Float, default=None)
    # What the pipeline doubted in a run that succeeded (e.g. a source language the speech contradicts).
    warnings: Mapped[list[str] | None] = mapped_column(JSON, default=None)

    # Runs: 1 + user retries. Attempts: Ray submissions ever (names them); run_attempts: in this run (bounded).
    runs: Mapped[int] = mapped_column(Integer, default=1)
    attempt: Mapped[int] = mapped_column(Integer, default=0)
    run_attempts: Mapped[int] = mapped_column(Integer, default=0)
    ray_job_id: Mapped[str | None] = mapped_column(String(128), default=None, index=True)
    # When Ray last confirmed it knows this attempt (None: the submission may not have reached it).
    ray_seen_at: Mapped[datetime | None] = mapped_column(default=None)
    progress_token_hash: Mapped[str | None] = mapped_column(String(64), default=None)
    # The pipeline's own final word on this attempt ("succeeded" / "failed"); a reported failure is not retried.
    reported_status: Mapped[str | None] = mapped_column(String(16), default=None)

    cancel_requested_at: Mapped[datetime | None] = mapped_column(default=None)
    submitted_at: Mapped[datetime | None] = mapped_column(default=None)
    started_at: Mapped[datetime | None] = mapped_column(default=None)
    # The current attempt's last sign of life: a progress report, or Ray first reporting it RUNNING.
    last_progress_at: Mapped[datetime | None] = mapped_column(default=None)
    finished_at: Mapped[datetime | None] = mapped_column(default=None)
    # Deleted by its user: gone from the API; its files are removed by the worker.
    deleted_at: Mapped[datetime | None] = mapped_column(default=None)
    # When the worker removed DATA_DIR/jobs/<id> (deleted, or past the retention); a retry clears it.
    files_removed_at: Mapped[datetime | None] = mapped_column(default=None)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    @property
    def cancel_requested(self) -> bool:
        return self.cancel_requested_at is not None

    def artifacts_expire_at(self, retention: timedelta | None) -> datetime | None:
        """When a succeeded job's outputs are removed (None: kept until the job is deleted, or no outputs)."""
        if self.status is not JobStatus.SUCCEEDED or self.finished_at is None or retention is None:
            return None
        return self.finished_at + retention

    @property
    def job_ref(self) -> str:
        """The credit reservation's reference for the current run (one reservation per run)."""
        return f"job:{self.id}:run:{self.runs}"


class JobEvent(CreatedAt, Base):
    __tablename__ = "job_events"
    __table_args__ = (Index("ix_job_events_job_id_id", "job_id", "id"),)

    id: Mapped[int] = mapped_column(BigIntegerId, primary_key=True, autoincrement=True)
    job_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    kind: Mapped[JobEventKind] = mapped_column(
        Enum(JobEventKind, native_enum=False, length=16, values_callable=_values)
    )
    data: Mapped[dict[str, Any]] = mapped_column(JSON)

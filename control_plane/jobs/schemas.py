from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from control_plane.jobs.models import Job, JobStatus

# A hard cap for the request body; the configured limit (OCTAVIA_JOBS_MAX_TARGET_LANGUAGES) is checked by the service.
MAX_LANGUAGES_IN_REQUEST = 50


class JobOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    speakers: Literal["auto"] | Annotated[int, Field(ge=1, le=32)] = Field(
        default="auto", description="number of speakers, or auto (diarization decides)"
    )
    separation: Literal["auto", "none", "spleeter", "demucs"] = Field(
        default="auto", description="keep the background by separating it from the voices"
    )
    keep_original_audio: bool = Field(default=False, description="also keep the original audio track")
    burn_subtitles: bool = Field(default=False, description="draw the subtitles into the picture")
    profile: Literal["auto", "offline", "quality"] = Field(
        default="auto", description="offline (CPU models) or quality (GPU models); auto picks by hardware"
    )


class JobCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    upload_id: str = Field(min_length=1, max_length=64, description="a complete upload of yours")
    target_languages: list[Annotated[str, Field(min_length=2, max_length=16)]] = Field(
        min_length=1, max_length=MAX_LANGUAGES_IN_REQUEST, description="ISO 639-1 codes, e.g. ['es', 'pt']"
    )
    source_language: Annotated[str, Field(min_length=2, max_length=16)] | None = Field(
        default=None,
        description="ISO 639-1 code, or null / 'auto' to detect it. A given code is used as told; when the speech "
        "sounds like another language, the job's `warnings` (and the transcript's) say so",
    )
    options: JobOptions = Field(default_factory=JobOptions)


class JobError(BaseModel):
    code: str
    message: str


class JobRead(BaseModel):
    id: uuid.UUID
    upload_id: str
    status: JobStatus
    stage: str | None = Field(description="the pipeline stage being worked on (e.g. analyze, synthesize:es)")
    progress: float = Field(description="0-100")
    eta_seconds: float | None
    error: JobError | None
    source_language: str | None
    target_languages: list[str]
    options: dict[str, Any]
    reserved_credits: int = Field(description="credits held for the current run")
    charged_credits: int | None = Field(description="credits charged (set when the job succeeded)")
    media_duration: float | None = Field(description="seconds, as measured by the pipeline")
    warnings: list[str] = Field(
        description="what the run doubted though it succeeded, e.g. a source_language the speech contradicts"
    )
    cancel_requested: bool
    attempts: int = Field(description="Ray runs of the current run (retries after infrastructure failures)")
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    artifacts_expire_at: datetime | None = Field(
        description="when a succeeded job's files are removed (OCTAVIA_JOBS_ARTIFACT_RETENTION_DAYS after it "
        "finished; afterwards the artifacts answer 410); null: kept until the job is deleted"
    )

    @classmethod
    def of(cls, job: Job, retention: timedelta | None) -> JobRead:
        error = JobError(code=job.error_code, message=job.error_message or "") if job.error_code else None
        return cls(
            id=job.id,
            upload_id=job.upload_id,
            status=job.status,
            stage=job.stage,
            progress=job.progress,
            eta_seconds=job.eta_seconds,
            error=error,
            source_language=job.source_language,
            target_languages=list(job.target_languages),
            options=dict(job.options),
            reserved_credits=job.reserved_credits,
            charged_credits=job.charged_credits,
            media_duration=job.media_duration,
            warnings=list(job.warnings or ()),
            cancel_requested=job.cancel_requested,
            attempts=job.run_attempts,
            created_at=job.created_at,
            started_at=job.started_at,
            finished_at=job.finished_at,
            artifacts_expire_at=job.artifacts_expire_at(retention),
        )


class ArtifactRead(BaseModel):
    name: str = Field(description="use it in GET /v1/jobs/{id}/artifacts/{name}")
    size: int
    kind: Literal["video", "audio", "subtitles", "dub_audio", "background", "transcript", "other"]
    language: str | None
    content_type: str


class ArtifactList(BaseModel):
    items: list[ArtifactRead]


# --- the pipeline's progress channel (internal) ----------------------------------------------------------------


class ReportedError(BaseModel):
    code: str = Field(min_length=1, max_length=64)
    message: str = Field(default="", max_length=10_000)


class ProgressReport(BaseModel):
    """What `pipeline.job` POSTs to /internal/jobs/{id}/progress."""

    stage: str = Field(default="", max_length=64)
    progress: float | None = Field(default=None, ge=0, le=100)
    eta_seconds: float | None = Field(default=None, ge=0)
    status: Literal["running", "succeeded", "failed"] = "running"
    error: ReportedError | None = None
    media_duration: float | None = Field(default=None, gt=0)
    warnings: list[Annotated[str, Field(max_length=1000)]] = Field(default_factory=list, max_length=20)


class ProgressAck(BaseModel):
    accepted: bool = Field(description="false: the job is finished and ignores late reports")
    status: JobStatus
    cancel_requested: bool = Field(description="true: the user canceled; the run may stop early")

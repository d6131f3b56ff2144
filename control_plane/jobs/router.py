from __future__ import annotations

import re
import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query, Request, Response, status
from fastapi.responses import FileResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sse_starlette.sse import EventSourceResponse
from starlette.responses import MalformedRangeHeader, RangeNotSatisfiable

from control_plane.deps import CurrentUser, SessionDep, SettingsDep
from control_plane.errors import ApiError, InvalidRequestError
from control_plane.jobs import service
from control_plane.jobs.events import job_event_stream, parse_last_event_id
from control_plane.jobs.models import JobStatus
from control_plane.jobs.schemas import ArtifactList, ArtifactRead, JobCreate, JobRead, ProgressAck, ProgressReport
from control_plane.pagination import Page, PageParamsDep
from control_plane.routing import UnitOfWorkRoute

router = APIRouter(route_class=UnitOfWorkRoute, prefix="/jobs", tags=["jobs"])

# Printable ASCII without spaces at the ends (what Stripe and the IETF draft allow in practice).
_IDEMPOTENCY_KEY = re.compile(r"^[\x21-\x7e][\x20-\x7e]{0,253}[\x21-\x7e]$|^[\x21-\x7e]$")


class InvalidIdempotencyKeyError(InvalidRequestError):
    code = "invalid_idempotency_key"


class InvalidRangeError(ApiError):
    code = "invalid_range"


class RangeNotSatisfiableError(ApiError):
    status_code = 416
    code = "range_not_satisfiable"


IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        description="any unique string (≤ 255 printable ASCII): repeating the request with the same key and body "
        "returns the same job instead of creating another; the same key with another body is a 422",
    ),
]


@router.post("", status_code=status.HTTP_201_CREATED, response_model=JobRead)
def create_job(
    body: JobCreate,
    response: Response,
    user: CurrentUser,
    session: SessionDep,
    settings: SettingsDep,
    idempotency_key: IdempotencyKey = None,
) -> JobRead:
    """Queues a dub of one of your complete uploads into the target languages and reserves its estimated credits
    (402 with the estimate in `details` when your balance is short). On success you are charged for the measured
    duration and the rest of the hold is released; failure or cancel releases everything."""
    if idempotency_key is not None and not _IDEMPOTENCY_KEY.match(idempotency_key):
        raise InvalidIdempotencyKeyError("Idempotency-Key must be 1-255 printable ASCII characters")
    job, replayed = service.create_job(session, settings, user.id, body, idempotency_key)
    if replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return JobRead.of(job, settings.jobs_artifact_retention)


@router.get("", response_model=Page[JobRead])
def list_jobs(
    user: CurrentUser,
    session: SessionDep,
    settings: SettingsDep,
    page: PageParamsDep,
    status_filter: Annotated[JobStatus | None, Query(alias="status", description="only jobs in this status")] = None,
) -> Page[JobRead]:
    """Your jobs, newest first."""
    jobs, next_cursor = service.list_jobs(session, user.id, page, status_filter)
    return Page[JobRead](
        items=[JobRead.of(job, settings.jobs_artifact_retention) for job in jobs], next_cursor=next_cursor
    )


@router.get("/{job_id}", response_model=JobRead)
def read_job(job_id: uuid.UUID, user: CurrentUser, session: SessionDep, settings: SettingsDep) -> JobRead:
    """Status (queued, running, succeeded, failed, canceled), stage, progress 0-100, ETA and error."""
    return JobRead.of(service.get_job(session, user.id, job_id), settings.jobs_artifact_retention)


@router.delete("/{job_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_job(job_id: uuid.UUID, user: CurrentUser, session: SessionDep) -> None:
    """Deletes a finished job: it is gone from the API at once and its files are removed within seconds.
    Credits already charged stay charged (the ledger keeps its entries). 409 for a queued or running job: cancel
    it first."""
    service.delete_job(session, user.id, job_id)


@router.post("/{job_id}/cancel", status_code=status.HTTP_202_ACCEPTED, response_model=JobRead)
def cancel_job(job_id: uuid.UUID, user: CurrentUser, session: SessionDep, settings: SettingsDep) -> JobRead:
    """A queued job is canceled at once; a running one gets `cancel_requested` and becomes `canceled` when its Ray
    job has stopped (watch the status or the events). Credits are released. 409 for a finished job."""
    return JobRead.of(service.cancel_job(session, settings, user.id, job_id), settings.jobs_artifact_retention)


@router.post("/{job_id}/retry", status_code=status.HTTP_202_ACCEPTED, response_model=JobRead)
def retry_job(job_id: uuid.UUID, user: CurrentUser, session: SessionDep, settings: SettingsDep) -> JobRead:
    """Runs a failed or canceled job again from the start, with a new credit hold. 409 for any other status."""
    return JobRead.of(service.retry_job(session, settings, user.id, job_id), settings.jobs_artifact_retention)


@router.get(
    "/{job_id}/events",
    response_class=EventSourceResponse,
    responses={200: {"content": {"text/event-stream": {}}, "description": "`progress` and `status` events"}},
)
def job_events(
    job_id: uuid.UUID,
    request: Request,
    user: CurrentUser,
    session: SessionDep,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID", include_in_schema=False)] = None,
) -> EventSourceResponse:
    """Server-Sent Events: `progress` (stage, progress, eta_seconds) and `status` (status, stage, progress, error,
    cancel_requested), each with an `id`; the stream replays the job's history, follows it live and ends when the
    job is finished. Reconnect with `Last-Event-ID` to resume."""
    service.get_job(session, user.id, job_id)  # 404 for unknown and other users' jobs, before streaming
    stream = job_event_stream(request.app.state.session_factory, job_id, parse_last_event_id(last_event_id))
    return EventSourceResponse(stream, ping=15, headers={"Cache-Control": "no-store"})


@router.get("/{job_id}/artifacts", response_model=ArtifactList)
def list_artifacts(job_id: uuid.UUID, user: CurrentUser, session: SessionDep, settings: SettingsDep) -> ArtifactList:
    """The files of a succeeded job (409 before it succeeded; 410 from its `artifacts_expire_at`): dubbed video or
    audio per language, subtitles (.srt, .vtt), dubbed voice tracks (.wav), the background track and the
    transcript."""
    found = service.list_job_artifacts(session, settings, user.id, job_id)
    return ArtifactList(
        items=[
            ArtifactRead(name=a.name, size=a.size, kind=a.kind, language=a.language, content_type=a.content_type)  # type: ignore[arg-type]
            for a in found
        ]
    )


@router.get(
    "/{job_id}/artifacts/{name}",
    response_class=FileResponse,
    responses={
        200: {"content": {"application/octet-stream": {}}, "description": "the file"},
        206: {"description": "the requested byte range"},
        416: {"description": "range not satisfiable"},
    },
)
def download_artifact(
    job_id: uuid.UUID,
    name: str,
    user: CurrentUser,
    session: SessionDep,
    settings: SettingsDep,
    range_header: Annotated[str | None, Header(alias="Range", include_in_schema=False)] = None,
    if_range: Annotated[str | None, Header(alias="If-Range", include_in_schema=False)] = None,
) -> FileResponse:
    """Streams one artifact, by a name from the listing; supports `Range` (206, 416)."""
    artifact, filename = service.get_job_artifact(session, settings, user.id, job_id, name)
    if range_header is not None and if_range is None:
        _check_range(range_header, artifact.size)
    return FileResponse(
        artifact.path,
        media_type=artifact.content_type,
        filename=filename,
        content_disposition_type="attachment",
    )


def _check_range(header: str, size: int) -> None:
    """Refuses a bad Range with the API's error shape, using the parser FileResponse itself applies."""
    try:
        FileResponse._parse_range_header(header, size)
    except MalformedRangeHeader as exc:
        raise InvalidRangeError(f"invalid Range header: {exc.content}", details={"range": header[:200]}) from None
    except RangeNotSatisfiable:
        raise RangeNotSatisfiableError(
            f"range not satisfiable: the file has {size} bytes",
            details={"range": header[:200], "size": size},
            headers={"Content-Range": f"bytes */{size}"},
        ) from None


# --- the pipeline's progress channel: not under /v1, not in the OpenAPI document ----------------------------------

internal_router = APIRouter(route_class=UnitOfWorkRoute, prefix="/internal/jobs", include_in_schema=False)
_progress_bearer = HTTPBearer(auto_error=False)


@internal_router.post("/{job_id}/progress", response_model=ProgressAck)
def report_progress(
    job_id: uuid.UUID,
    report: ProgressReport,
    session: SessionDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_progress_bearer)],
) -> ProgressAck:
    """For the pipeline: `Authorization: Bearer <OCTAVIA_PROGRESS_TOKEN of this attempt>`."""
    if credentials is None:
        raise service.InvalidProgressTokenError()
    outcome = service.record_progress(session, job_id, credentials.credentials, report)
    return ProgressAck(
        accepted=outcome.accepted, status=outcome.job.status, cancel_requested=outcome.job.cancel_requested
    )

"""`/v1/uploads`: tus 1.0 (OPTIONS, POST creation, HEAD, PATCH, DELETE) plus JSON reads for API users.

Authenticate as anywhere else (`Authorization: Bearer ...`; tus clients send custom headers). HEAD and OPTIONS are
protocol plumbing and stay out of the OpenAPI document (a HEAD answer has no body to describe).
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Depends, Request, Response, status
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from control_plane.deps import CurrentUser, SessionDep, SettingsDep
from control_plane.pagination import Page, PageParamsDep
from control_plane.uploads import service, storage
from control_plane.uploads.models import Upload, UploadStatus
from control_plane.uploads.schemas import UploadRead
from control_plane.uploads.tus import (
    CHECKSUM_ALGORITHMS,
    OFFSET_CONTENT_TYPE,
    TUS_EXTENSIONS,
    TUS_VERSION,
    TusHeaderError,
    TusRoute,
    UnsupportedContentTypeError,
    encode_metadata,
    http_date,
    parse_checksum,
    parse_metadata,
    parse_non_negative_int,
    require_tus_version,
)

router = APIRouter(prefix="/uploads", tags=["uploads"], route_class=TusRoute)
TUS_REQUEST = [Depends(require_tus_version)]


def _progress_headers(upload: Upload) -> dict[str, str]:
    headers = {"Upload-Offset": str(upload.offset), "Upload-Length": str(upload.length), "Cache-Control": "no-store"}
    if upload.status is UploadStatus.UPLOADING:
        headers["Upload-Expires"] = http_date(upload.expires_at)
    metadata = encode_metadata({"filename": upload.filename, "filetype": upload.filetype})
    if metadata:
        headers["Upload-Metadata"] = metadata
    return headers


@router.options("", include_in_schema=False)
def tus_capabilities(settings: SettingsDep) -> Response:
    """tus discovery: version, extensions, maximum size, checksum algorithms (no authentication needed)."""
    return Response(
        status_code=status.HTTP_204_NO_CONTENT,
        headers={
            "Tus-Version": TUS_VERSION,
            "Tus-Extension": TUS_EXTENSIONS,
            "Tus-Max-Size": str(settings.upload_max_bytes),
            "Tus-Checksum-Algorithm": ",".join(CHECKSUM_ALGORITHMS),
        },
    )


@router.post("", status_code=status.HTTP_201_CREATED, response_model=UploadRead, dependencies=TUS_REQUEST)
def create_upload(request: Request, user: CurrentUser, session: SessionDep, settings: SettingsDep) -> Response:
    """tus creation: `Upload-Length` (bytes) and optional `Upload-Metadata` (`filename`, `filetype`). Answers 201
    with the upload's URL in `Location`; 413 beyond the maximum size or your quota."""
    if "upload-defer-length" in request.headers:
        raise TusHeaderError("Upload-Defer-Length is not supported; send Upload-Length")
    length = parse_non_negative_int(request.headers, "Upload-Length")
    metadata = parse_metadata(request.headers.get("upload-metadata"))
    upload = service.create_upload(session, settings, user.id, length, metadata)
    location = str(request.url_for("read_upload", upload_id=upload.id))
    return JSONResponse(
        UploadRead.of(upload).model_dump(mode="json"),
        status_code=status.HTTP_201_CREATED,
        headers={"Location": location, "Upload-Expires": http_date(upload.expires_at)},
    )


@router.get("", response_model=Page[UploadRead])
def list_uploads(user: CurrentUser, session: SessionDep, page: PageParamsDep) -> Page[UploadRead]:
    """Your uploads, newest first, with their status and (once complete) media duration."""
    uploads, next_cursor = service.list_uploads(session, user.id, page)
    return Page[UploadRead](items=[UploadRead.of(u) for u in uploads], next_cursor=next_cursor)


@router.get("/{upload_id}", response_model=UploadRead)
def read_upload(upload_id: str, user: CurrentUser, session: SessionDep) -> UploadRead:
    """One upload as JSON (the same URL answers the tus HEAD/PATCH/DELETE requests)."""
    return UploadRead.of(service.get_upload(session, user.id, upload_id))


@router.head("/{upload_id}", include_in_schema=False, dependencies=TUS_REQUEST)
def upload_offset(upload_id: str, user: CurrentUser, session: SessionDep) -> Response:
    """tus: where to resume (`Upload-Offset`)."""
    upload = service.get_resumable(session, user.id, upload_id)
    return Response(status_code=status.HTTP_200_OK, headers=_progress_headers(upload))


@router.patch("/{upload_id}", status_code=status.HTTP_204_NO_CONTENT, dependencies=TUS_REQUEST)
async def upload_chunk(
    upload_id: str, request: Request, user: CurrentUser, session: SessionDep, settings: SettingsDep
) -> Response:
    """tus: appends the body (`Content-Type: application/offset+octet-stream`) at `Upload-Offset` (409 if that is
    not the upload's offset). With `Upload-Checksum: sha1 <base64>` a mismatching chunk is discarded (460). After
    the last byte the file is checked with ffprobe: unusable media is deleted and answered 422 (`not_media`,
    `no_audio_stream`, `empty_media`)."""
    headers = request.headers
    if headers.get("content-type", "").split(";")[0].strip().lower() != OFFSET_CONTENT_TYPE:
        raise UnsupportedContentTypeError(f"a tus PATCH body must be sent as {OFFSET_CONTENT_TYPE}")
    offset = parse_non_negative_int(headers, "Upload-Offset")
    checksum = parse_checksum(headers.get("upload-checksum"))
    content_length = parse_non_negative_int(headers, "Content-Length") if "content-length" in headers else None

    upload = await run_in_threadpool(service.get_resumable, session, user.id, upload_id)
    path = Path(upload.storage_path)
    with storage.locked_file(path) as descriptor:
        upload = await run_in_threadpool(
            service.begin_chunk, session, user.id, upload_id, offset, content_length=content_length
        )
        # No transaction stays open while the body streams (on SQLite it would hold the database's write lock).
        await run_in_threadpool(session.commit)
        received = await storage.receive_chunk(
            descriptor, offset, request.stream(), max_bytes=upload.length - offset, checksum=checksum
        )
        upload = await run_in_threadpool(
            service.record_chunk, session, settings, user.id, upload_id, offset, received.written
        )
        # The bytes are recorded even if the media check below fails or crashes.
        await run_in_threadpool(session.commit)
    if upload.offset == upload.length:
        upload = await run_in_threadpool(service.finalize_upload, session, settings, upload)
    return Response(status_code=status.HTTP_204_NO_CONTENT, headers=_progress_headers(upload))


@router.delete("/{upload_id}", status_code=status.HTTP_204_NO_CONTENT, dependencies=TUS_REQUEST)
def terminate_upload(upload_id: str, user: CurrentUser, session: SessionDep) -> Response:
    """tus termination: deletes the upload and its file."""
    service.terminate_upload(session, user.id, upload_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)

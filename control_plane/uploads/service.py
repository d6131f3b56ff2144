"""Uploads: creation with quota and size limits, chunk bookkeeping, the media check after the last byte, termination
and the expiry sweep. The tus wire format is in `tus.py`, bytes on disk in `storage.py`; nothing here commits.

Another user's upload, a deleted one and a malformed id are all 404 (no enumeration). Protocol requests on an
upload that expired or was rejected get 410 Gone (tus: the client must start over).
"""

from __future__ import annotations

import logging
import re
import uuid
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy.orm import Session

from control_plane import metrics
from control_plane.config import Settings
from control_plane.db import utcnow
from control_plane.errors import ApiError, ConflictError, ResourceNotFoundError
from control_plane.pagination import PageParams
from control_plane.uploads import storage
from control_plane.uploads.models import Upload, UploadStatus
from control_plane.uploads.probe import UploadRejectedError, probe_media
from control_plane.uploads.repository import UploadRepository
from control_plane.uploads.tus import TusHeaderError, clean_metadata_text

logger = logging.getLogger("control_plane.uploads")

_UPLOAD_ID_RE = re.compile(r"^[0-9a-f]{32}$")
SWEEP_BATCH = 100


class UploadNotFoundError(ResourceNotFoundError):
    code = "upload_not_found"


class UploadGoneError(ApiError):
    status_code = 410
    code = "upload_gone"


class UploadExpiredError(UploadGoneError):
    code = "upload_expired"


class UploadWasRejectedError(UploadGoneError):
    code = "upload_rejected"


class OffsetMismatchError(ConflictError):
    code = "offset_mismatch"


class UploadCompleteError(ConflictError):
    code = "upload_complete"


class UploadNotReadyError(ConflictError):
    code = "upload_not_ready"


class UploadTooLargeError(ApiError):
    status_code = 413
    code = "upload_too_large"


class UploadQuotaExceededError(ApiError):
    status_code = 413
    code = "upload_quota_exceeded"


class EmptyUploadError(TusHeaderError):
    code = "empty_upload"


def _not_found(upload_id: str) -> UploadNotFoundError:
    return UploadNotFoundError("no such upload", details={"upload_id": upload_id[:64]})


def _is_expired(upload: Upload, now: datetime) -> bool:
    return upload.status is UploadStatus.EXPIRED or (
        upload.status is UploadStatus.UPLOADING and upload.expires_at <= now
    )


def get_upload(session: Session, user_id: uuid.UUID, upload_id: str, *, for_update: bool = False) -> Upload:
    """The user's upload in any status but deleted; 404 otherwise (another user's included)."""
    if not _UPLOAD_ID_RE.match(upload_id):
        raise _not_found(upload_id)
    upload = UploadRepository(session).get_for_user(user_id, upload_id, for_update=for_update)
    if upload is None:
        raise _not_found(upload_id)
    return upload


def get_ready_upload(session: Session, user_id: uuid.UUID, upload_id: str) -> Upload:
    """For jobs: the user's complete upload. 404 if unknown or another user's, 409 if it is not complete."""
    upload = get_upload(session, user_id, upload_id)
    if upload.status is not UploadStatus.COMPLETE:
        raise UploadNotReadyError(
            f"upload {upload_id} is {upload.status.value}, not complete",
            details={"upload_id": upload_id, "status": upload.status.value},
        )
    return upload


def list_uploads(session: Session, user_id: uuid.UUID, params: PageParams) -> tuple[list[Upload], str | None]:
    return UploadRepository(session).list_for_user(user_id, params)


def create_upload(
    session: Session,
    settings: Settings,
    user_id: uuid.UUID,
    length: int,
    metadata: dict[str, str],
    *,
    now: datetime | None = None,
) -> Upload:
    """A new upload of `length` bytes, within OCTAVIA_UPLOAD_MAX_BYTES and the user's OCTAVIA_UPLOAD_QUOTA_BYTES."""
    now = now or utcnow()
    if length == 0:
        raise EmptyUploadError("an empty file is not media; Upload-Length must be positive")
    if length > settings.upload_max_bytes:
        raise UploadTooLargeError(
            f"the file is larger than the {settings.upload_max_bytes} bytes allowed",
            details={"length": length, "max_bytes": settings.upload_max_bytes},
        )
    repository = UploadRepository(session)
    used = repository.live_bytes(user_id)
    if used + length > settings.upload_quota_bytes:
        raise UploadQuotaExceededError(
            "this upload would exceed your storage quota; delete uploads you no longer need",
            details={"quota_bytes": settings.upload_quota_bytes, "used_bytes": used, "requested_bytes": length},
        )
    upload_id = uuid.uuid4().hex
    return repository.add(
        Upload(
            id=upload_id,
            user_id=user_id,
            filename=clean_metadata_text(metadata.get("filename") or metadata.get("name")),
            filetype=clean_metadata_text(metadata.get("filetype") or metadata.get("type")),
            length=length,
            offset=0,
            status=UploadStatus.UPLOADING,
            storage_path=str(storage.upload_path(settings.data_dir, user_id, upload_id)),
            expires_at=now + timedelta(seconds=settings.upload_expiration_seconds),
            created_at=now,
        )
    )


def get_resumable(session: Session, user_id: uuid.UUID, upload_id: str, *, now: datetime | None = None) -> Upload:
    """For HEAD: an upload whose offset means something (uploading or complete); 410 if expired or rejected."""
    upload = get_upload(session, user_id, upload_id)
    _refuse_gone(upload, now or utcnow())
    return upload


def _refuse_gone(upload: Upload, now: datetime) -> None:
    if _is_expired(upload, now):
        raise UploadExpiredError("this upload expired; start a new one", details={"upload_id": upload.id})
    if upload.status is UploadStatus.REJECTED:
        raise UploadWasRejectedError(
            f"this upload was rejected: {upload.error_message}",
            details={"upload_id": upload.id, "reason": upload.error_code},
        )


def begin_chunk(
    session: Session, user_id: uuid.UUID, upload_id: str, offset: int, *, content_length: int | None = None
) -> Upload:
    """Checks a PATCH before its body is read: the upload accepts bytes at `offset` (409 otherwise)."""
    upload = get_upload(session, user_id, upload_id, for_update=True)
    _refuse_gone(upload, utcnow())
    if upload.status is UploadStatus.COMPLETE:
        raise UploadCompleteError("this upload is already complete", details={"upload_id": upload_id})
    if offset != upload.offset:
        raise OffsetMismatchError(
            f"Upload-Offset {offset} does not match the upload's offset {upload.offset}; HEAD the upload and resume",
            details={"upload_offset": offset, "expected_offset": upload.offset},
        )
    remaining = upload.length - upload.offset
    if content_length is not None and content_length > remaining:
        raise storage.ChunkTooLargeError(
            f"the chunk goes past the upload's length ({remaining} bytes remain)",
            details={"remaining": remaining, "content_length": content_length},
        )
    return upload


def record_chunk(
    session: Session,
    settings: Settings,
    user_id: uuid.UUID,
    upload_id: str,
    offset: int,
    written: int,
    *,
    now: datetime | None = None,
) -> Upload:
    """Moves the offset past the `written` bytes stored at `offset`; activity pushes the expiry back."""
    now = now or utcnow()
    upload = get_upload(session, user_id, upload_id, for_update=True)
    if upload.status is not UploadStatus.UPLOADING or upload.offset != offset:
        # Terminated or swept while the body streamed (the sweep skips locked files, termination does not wait).
        raise _not_found(upload_id)
    upload.offset = offset + written
    upload.expires_at = now + timedelta(seconds=settings.upload_expiration_seconds)
    session.flush()
    return upload


def finalize_upload(session: Session, settings: Settings, upload: Upload) -> Upload:
    """After the last byte of `upload` (as loaded by `record_chunk`): ffprobe the file first, so no transaction waits
    on it, then mark the upload complete with its duration, or rejected with its file deleted (422, committed)."""
    user_id, upload_id, path = upload.user_id, upload.id, Path(upload.storage_path)
    rejection: UploadRejectedError | None = None
    probe = None
    try:
        probe = probe_media(path, timeout_seconds=settings.upload_probe_timeout_seconds)
    except UploadRejectedError as exc:
        rejection = exc
    upload = get_upload(session, user_id, upload_id, for_update=True)
    if upload.status is not UploadStatus.UPLOADING or upload.offset != upload.length:
        return upload
    if rejection is not None:
        upload.status = UploadStatus.REJECTED
        upload.error_code = rejection.code
        upload.error_message = rejection.message[:500]
        storage.remove(path)
        session.flush()
        metrics.record_upload("rejected")
        logger.info("upload %s rejected: %s", upload_id, rejection.code)
        rejection.details = {**rejection.details, "upload_id": upload_id}
        raise rejection
    assert probe is not None
    upload.status = UploadStatus.COMPLETE
    upload.media_duration = probe.duration
    upload.media_info = probe.info
    upload.completed_at = utcnow()
    session.flush()
    metrics.record_upload("complete")
    return upload


def terminate_upload(session: Session, user_id: uuid.UUID, upload_id: str) -> None:
    """tus termination: the upload is gone for the user at once; the row stays (as `deleted`) for jobs that refer
    to it. Its file goes now, or, while a queued or running job still has to read it, when the last such job
    finishes (`remove_deleted_file`): deleting an upload right after creating a job must not fail the job."""
    upload = get_upload(session, user_id, upload_id, for_update=True)
    upload.status = UploadStatus.DELETED
    session.flush()
    remove_deleted_file(session, upload)


def remove_deleted_file(session: Session, upload: Upload) -> None:
    """Removes a deleted upload's file unless a queued or running job still reads it. The caller holds the upload's
    row lock (termination, or a job finishing), so one of the two always sees the other's change."""
    if upload.status is UploadStatus.DELETED and not UploadRepository(session).has_active_jobs(upload.id):
        storage.remove(Path(upload.storage_path))


def sweep_expired(session: Session, now: datetime | None = None) -> int:
    """Marks unfinished uploads past `expires_at` as expired and deletes their files; returns how many. For the
    worker loop (the caller commits). A file some request is writing right now is left for the next sweep."""
    now = now or utcnow()
    swept = 0
    for upload in UploadRepository(session).list_expired(now, SWEEP_BATCH):
        path = Path(upload.storage_path)
        descriptor = storage.try_lock(path)
        if descriptor is None and path.exists():
            continue  # a chunk is being written; it will refresh the expiry or fail
        try:
            storage.remove(path)
        finally:
            if descriptor is not None:
                storage.close(descriptor)
        upload.status = UploadStatus.EXPIRED
        swept += 1
    session.flush()
    metrics.record_upload("expired", swept)
    return swept

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from control_plane.uploads.models import Upload, UploadStatus


class UploadErrorRead(BaseModel):
    code: str = Field(description="not_media, no_audio_stream or empty_media")
    message: str


class UploadRead(BaseModel):
    id: str
    filename: str | None = Field(description="from the tus Upload-Metadata `filename`; informative only")
    filetype: str | None
    length: int = Field(description="bytes declared at creation")
    offset: int = Field(description="bytes received")
    status: UploadStatus
    media_duration: float | None = Field(description="seconds, once the upload is complete")
    media_info: dict[str, Any] | None = Field(description="container and streams found by ffprobe")
    error: UploadErrorRead | None = Field(description="why the upload was rejected")
    created_at: datetime
    expires_at: datetime = Field(description="an unfinished upload is deleted after this moment")
    completed_at: datetime | None

    @classmethod
    def of(cls, upload: Upload) -> UploadRead:
        error = None
        if upload.error_code is not None:
            error = UploadErrorRead(code=upload.error_code, message=upload.error_message or upload.error_code)
        return cls(
            id=upload.id,
            filename=upload.filename,
            filetype=upload.filetype,
            length=upload.length,
            offset=upload.offset,
            status=upload.status,
            media_duration=upload.media_duration,
            media_info=upload.media_info,
            error=error,
            created_at=upload.created_at,
            expires_at=upload.expires_at,
            completed_at=upload.completed_at,
        )

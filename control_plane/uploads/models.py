"""Uploads received over tus. A row exists from the creation request on; the file appears with the first chunk.

Life cycle: `uploading` → `complete` (the last byte arrived and ffprobe found usable media) or `rejected` (not media,
no audio, no duration: the file is deleted). An unfinished upload past `expires_at` becomes `expired` (file
deleted by the sweep); a terminated one becomes `deleted`. Rows are kept (jobs refer to them); only `uploading` and
`complete` count towards the quota.
"""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, CheckConstraint, Enum, Float, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from control_plane.db import Base, CreatedAt


class UploadStatus(enum.StrEnum):
    UPLOADING = "uploading"
    COMPLETE = "complete"
    REJECTED = "rejected"
    EXPIRED = "expired"
    DELETED = "deleted"


LIVE_STATUSES = (UploadStatus.UPLOADING, UploadStatus.COMPLETE)


def new_upload_id() -> str:
    return uuid.uuid4().hex


class Upload(CreatedAt, Base):
    __tablename__ = "uploads"
    __table_args__ = (
        CheckConstraint("length > 0", name="length_positive"),
        CheckConstraint('"offset" >= 0 AND "offset" <= length', name="offset_within_length"),
        Index("ix_uploads_user_id_created_at", "user_id", "created_at"),
        Index("ix_uploads_status_expires_at", "status", "expires_at"),
    )

    # 32 hex characters: part of the tus URL, and the file name on disk.
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_upload_id, sort_order=-10)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    # Client metadata (tus Upload-Metadata), shown back to the user and never used to build a path.
    filename: Mapped[str | None] = mapped_column(String(255), default=None)
    filetype: Mapped[str | None] = mapped_column(String(255), default=None)
    length: Mapped[int] = mapped_column(BigInteger)
    offset: Mapped[int] = mapped_column(BigInteger, default=0)
    status: Mapped[UploadStatus] = mapped_column(
        Enum(UploadStatus, native_enum=False, length=16, values_callable=lambda e: [m.value for m in e]),
        default=UploadStatus.UPLOADING,
    )
    storage_path: Mapped[str] = mapped_column(String(1024))
    media_duration: Mapped[float | None] = mapped_column(Float, default=None)
    media_info: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    # Why the upload was rejected (`not_media`, `no_audio_stream`, `empty_media`), for the user.
    error_code: Mapped[str | None] = mapped_column(String(64), default=None)
    error_message: Mapped[str | None] = mapped_column(String(500), default=None)
    expires_at: Mapped[datetime]
    completed_at: Mapped[datetime | None] = mapped_column(default=None)

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from control_plane.jobs.models import ACTIVE_STATUSES, Job
from control_plane.pagination import PageParams, paginate
from control_plane.uploads.models import LIVE_STATUSES, Upload, UploadStatus


class UploadRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, upload: Upload) -> Upload:
        self.session.add(upload)
        self.session.flush()
        return upload

    def get_for_user(self, user_id: uuid.UUID, upload_id: str, *, for_update: bool = False) -> Upload | None:
        """The user's upload (any status but deleted); `for_update` locks the row and reloads it."""
        statement = select(Upload).where(
            Upload.id == upload_id, Upload.user_id == user_id, Upload.status != UploadStatus.DELETED
        )
        if for_update:
            statement = statement.with_for_update().execution_options(populate_existing=True)
        return self.session.scalar(statement)

    def list_for_user(self, user_id: uuid.UUID, params: PageParams) -> tuple[list[Upload], str | None]:
        statement = select(Upload).where(Upload.user_id == user_id, Upload.status != UploadStatus.DELETED)
        return paginate(self.session, statement, order_by=[Upload.created_at, Upload.id], params=params)

    def live_bytes(self, user_id: uuid.UUID) -> int:
        """The total declared length of the user's unfinished and complete uploads (what the quota counts)."""
        statement = select(func.coalesce(func.sum(Upload.length), 0)).where(
            Upload.user_id == user_id, Upload.status.in_(LIVE_STATUSES)
        )
        return int(self.session.scalar(statement) or 0)

    def has_active_jobs(self, upload_id: str) -> bool:
        """Whether a queued or running job dubs this upload (it still has to read the file)."""
        statement = select(Job.id).where(Job.upload_id == upload_id, Job.status.in_(ACTIVE_STATUSES)).limit(1)
        return self.session.scalar(statement) is not None

    def list_expired(self, now: datetime, limit: int) -> list[Upload]:
        """Unfinished uploads past their expiry, locked; rows another transaction holds are skipped (PostgreSQL)."""
        statement = (
            select(Upload)
            .where(Upload.status == UploadStatus.UPLOADING, Upload.expires_at <= now)
            .order_by(Upload.expires_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        return list(self.session.scalars(statement))

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, delete, func, or_, select
from sqlalchemy.orm import Session

from control_plane.jobs.models import ACTIVE_STATUSES, FINAL_STATUSES, Job, JobEvent, JobEventKind, JobStatus
from control_plane.pagination import PageParams, paginate


class JobRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, job: Job) -> Job:
        self.session.add(job)
        self.session.flush()
        return job

    def get_for_user(self, user_id: uuid.UUID, job_id: uuid.UUID, *, for_update: bool = False) -> Job | None:
        """The user's job, unless they deleted it."""
        statement = select(Job).where(Job.id == job_id, Job.user_id == user_id, Job.deleted_at.is_(None))
        if for_update:
            statement = statement.with_for_update().execution_options(populate_existing=True)
        return self.session.scalar(statement)

    def get(self, job_id: uuid.UUID, *, for_update: bool = False, skip_locked: bool = False) -> Job | None:
        """Any user's job (internal callers: the progress channel, the reconciler). `skip_locked`: None when another
        transaction holds the row (PostgreSQL), so workers never wait on each other."""
        statement = select(Job).where(Job.id == job_id)
        if for_update:
            statement = statement.with_for_update(skip_locked=skip_locked).execution_options(populate_existing=True)
        return self.session.scalar(statement)

    def get_by_idempotency_key(self, user_id: uuid.UUID, key: str) -> Job | None:
        return self.session.scalar(select(Job).where(Job.user_id == user_id, Job.idempotency_key == key))

    def list_for_user(
        self, user_id: uuid.UUID, params: PageParams, status: JobStatus | None = None
    ) -> tuple[list[Job], str | None]:
        statement = select(Job).where(Job.user_id == user_id, Job.deleted_at.is_(None))
        if status is not None:
            statement = statement.where(Job.status == status)
        return paginate(self.session, statement, order_by=[Job.created_at, Job.id], params=params)

    def submitted_active_ids(self) -> list[uuid.UUID]:
        """Jobs with a Ray attempt that have not finished: the ones to poll."""
        statement = (
            select(Job.id)
            .where(Job.status.in_(ACTIVE_STATUSES), Job.ray_job_id.is_not(None))
            .order_by(Job.created_at, Job.id)
        )
        return list(self.session.scalars(statement))

    def unsubmitted_ids(self, limit: int) -> list[uuid.UUID]:
        """Queued jobs never sent to Ray in this run, oldest first."""
        statement = (
            select(Job.id)
            .where(Job.status == JobStatus.QUEUED, Job.ray_job_id.is_(None), Job.cancel_requested_at.is_(None))
            .order_by(Job.created_at, Job.id)
            .limit(limit)
        )
        return list(self.session.scalars(statement))

    def with_files_to_remove(self, finished_before: datetime | None, limit: int) -> list[Job]:
        """Finished jobs whose files are still there although the job was deleted or finished before
        `finished_before` (None: deleted ones only), locked; rows another transaction holds are skipped."""
        due: ColumnElement[bool] = Job.deleted_at.is_not(None)
        if finished_before is not None:
            due = or_(due, Job.finished_at < finished_before)
        statement = (
            select(Job)
            .where(Job.files_removed_at.is_(None), Job.status.in_(FINAL_STATUSES), due)
            .order_by(Job.finished_at, Job.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        return list(self.session.scalars(statement))

    def delete_events(self, job_id: uuid.UUID) -> None:
        self.session.execute(delete(JobEvent).where(JobEvent.job_id == job_id))

    def count_by_status(self) -> dict[str, int]:
        rows = self.session.execute(select(Job.status, func.count()).group_by(Job.status))
        return {JobStatus(status).value: int(count) for status, count in rows}

    def add_event(self, job_id: uuid.UUID, kind: JobEventKind, data: dict[str, Any]) -> JobEvent:
        event = JobEvent(job_id=job_id, kind=kind, data=data)
        self.session.add(event)
        self.session.flush()
        return event

    def events_after(self, job_id: uuid.UUID, after_id: int, limit: int = 500) -> list[JobEvent]:
        statement = (
            select(JobEvent).where(JobEvent.job_id == job_id, JobEvent.id > after_id).order_by(JobEvent.id).limit(limit)
        )
        return list(self.session.scalars(statement))

"""jobs.deleted_at and jobs.files_removed_at: deleting a job, and its files removed after the retention

Revision ID: 0005_job_deletion
Revises: 0004_job_warnings
Create Date: 2026-12-07 09:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_job_deletion"
down_revision: str | None = "0004_job_warnings"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("files_removed_at", sa.DateTime(timezone=True), nullable=True))
        batch.create_index("ix_jobs_files_removed_at_finished_at", ["files_removed_at", "finished_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:  # SQLite drops a column by copying the table
        batch.drop_index("ix_jobs_files_removed_at_finished_at")
        batch.drop_column("files_removed_at")
        batch.drop_column("deleted_at")

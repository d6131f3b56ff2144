"""`GET /v1/jobs/{id}/events`: the job's event log as Server-Sent Events (sse-starlette).

Events are rows of `job_events` (progress reports and status changes, written in the transaction that made them),
so every worker process serves the same ordered stream and a client that reconnects with `Last-Event-ID` resumes
after the last event it saw. The stream replays what happened so far, then polls for new rows, and ends once the
job is final and everything up to that point was sent. Each poll is a short transaction of its own: no database
connection is held while waiting.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Callable

import anyio
from sqlalchemy.orm import Session
from sse_starlette.event import ServerSentEvent

from control_plane.jobs.repository import JobRepository

POLL_SECONDS = 0.5
BATCH = 500


def _fetch(
    session_factory: Callable[[], Session], job_id: uuid.UUID, after_id: int
) -> tuple[list[ServerSentEvent], int, bool]:
    with session_factory() as session:
        repository = JobRepository(session)
        job = repository.get(job_id)
        # Status first: events committed with a final status are visible to the read that follows.
        final = job is None or job.status.is_final
        rows = repository.events_after(job_id, after_id, BATCH)
        events = [
            ServerSentEvent(data=json.dumps(row.data, separators=(",", ":")), event=row.kind.value, id=str(row.id))
            for row in rows
        ]
    last = rows[-1].id if rows else after_id
    return events, last, final and len(rows) < BATCH


async def job_event_stream(
    session_factory: Callable[[], Session], job_id: uuid.UUID, after_id: int = 0, poll_seconds: float = POLL_SECONDS
) -> AsyncIterator[ServerSentEvent]:
    while True:
        events, after_id, drained_and_final = await anyio.to_thread.run_sync(_fetch, session_factory, job_id, after_id)
        for event in events:
            yield event
        if drained_and_final:
            return
        if not events:
            await anyio.sleep(poll_seconds)


def parse_last_event_id(value: str | None) -> int:
    """The `Last-Event-ID` a reconnecting EventSource sends; anything unusable means "from the start"."""
    try:
        return max(0, int(value)) if value else 0
    except ValueError:
        return 0

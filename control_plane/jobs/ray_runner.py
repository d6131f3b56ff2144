"""The Ray boundary: `JobRunner` (submit / status / stop) and `RayJobRunner`, its implementation over the Ray Jobs
API (`ray.job_submission.JobSubmissionClient`, HTTP to the cluster's dashboard).

The control plane never imports the pipeline: a job is a shell command (`OCTAVIA_JOBS_ENTRYPOINT`, by default
`python -m pipeline.job`, plus the arguments `JobSpec` carries) run by Ray on the cluster, where the pipeline is
installed — no `working_dir` is uploaded. The progress token travels in the runtime environment's `env_vars`, not
in the command line, which the Ray dashboard shows to anyone who can open it.

Submission ids are chosen by the caller and deterministic per attempt, so submitting an attempt twice (a crash
between the submission and the database commit) finds the job Ray already has instead of starting a second one.
"""

from __future__ import annotations

import enum
import logging
import shlex
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from ray.job_submission import JobSubmissionClient

logger = logging.getLogger("control_plane.jobs")

PROGRESS_TOKEN_ENV = "OCTAVIA_PROGRESS_TOKEN"
# Ray keeps the last 20,000 characters of the log in a failed job's message; the job row keeps the end of that.
_MESSAGE_LIMIT = 1000


class RayJobState(enum.StrEnum):
    """Ray's `JobStatus` values, plus NOT_FOUND: the cluster has no job with that submission id."""

    PENDING = "PENDING"
    RUNNING = "RUNNING"
    STOPPED = "STOPPED"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    NOT_FOUND = "NOT_FOUND"


@dataclass(frozen=True)
class RunnerStatus:
    state: RayJobState
    message: str = ""


@dataclass(frozen=True)
class JobSpec:
    """One Ray submission: `arguments` are appended to the configured entrypoint command."""

    submission_id: str
    arguments: tuple[str, ...]
    env: Mapping[str, str] = field(repr=False)  # holds the progress token: kept out of logs and reprs
    metadata: Mapping[str, str]


class RunnerUnavailableError(Exception):
    """The cluster could not be reached or answered with an error; the caller tries again later."""


class JobRunner(Protocol):
    def submit(self, spec: JobSpec) -> str:
        """Submits `spec` (or finds the job already submitted under its id); returns the Ray submission id."""
        ...

    def status(self, ray_job_id: str) -> RunnerStatus: ...

    def stop(self, ray_job_id: str) -> None:
        """Asks Ray to stop the job (no-op for a finished or unknown one)."""
        ...


def _short(message: str | None) -> str:
    message = (message or "").strip()
    return message if len(message) <= _MESSAGE_LIMIT else "…" + message[-_MESSAGE_LIMIT:]


class RayJobRunner:
    """`JobRunner` over `JobSubmissionClient`. `address` is the dashboard URL (`http://head:8265`, preferred), a
    Ray address (`ray://head:10001`, `auto`), or None: `RAY_ADDRESS`, else the cluster running on this machine
    (`ray start --head`). Token-authenticated clusters work through Ray's own `RAY_AUTH_MODE=token` and
    `RAY_AUTH_TOKEN` environment variables, which the client reads."""

    def __init__(self, address: str | None, entrypoint: str, *, timeout_seconds: float = 10.0) -> None:
        if not shlex.split(entrypoint):
            raise ValueError("the jobs entrypoint command is empty")
        self.address = address
        self.entrypoint = entrypoint
        self.timeout_seconds = timeout_seconds
        self._client: JobSubmissionClient | None = None
        self._lock = threading.Lock()

    def command(self, spec: JobSpec) -> str:
        return " ".join([self.entrypoint, shlex.join(spec.arguments)])

    def submit(self, spec: JobSpec) -> str:
        client = self._connect()
        try:
            return str(
                client.submit_job(
                    entrypoint=self.command(spec),
                    submission_id=spec.submission_id,
                    runtime_env={"env_vars": dict(spec.env)},
                    metadata=dict(spec.metadata),
                )
            )
        except RuntimeError as exc:
            # Already submitted (we crashed before recording it, or another worker raced us): that job is ours.
            if self.status(spec.submission_id).state is not RayJobState.NOT_FOUND:
                logger.info("Ray job %s was already submitted; adopting it", spec.submission_id)
                return spec.submission_id
            raise RunnerUnavailableError(f"Ray refused job {spec.submission_id}: {_short(str(exc))}") from exc
        except Exception as exc:
            self._reset()
            raise RunnerUnavailableError(f"Ray job submission failed: {type(exc).__name__}: {exc}") from exc

    def status(self, ray_job_id: str) -> RunnerStatus:
        client = self._connect()
        try:
            info = client.get_job_info(ray_job_id)
        except RuntimeError as exc:
            if "status code 404" in str(exc):
                return RunnerStatus(RayJobState.NOT_FOUND, "Ray has no job with this id")
            raise RunnerUnavailableError(f"Ray job status failed: {_short(str(exc))}") from exc
        except Exception as exc:
            self._reset()
            raise RunnerUnavailableError(f"Ray job status failed: {type(exc).__name__}: {exc}") from exc
        return RunnerStatus(RayJobState(str(info.status)), _short(info.message))

    def stop(self, ray_job_id: str) -> None:
        client = self._connect()
        try:
            client.stop_job(ray_job_id)
        except RuntimeError as exc:
            if "status code 404" in str(exc):
                return
            raise RunnerUnavailableError(f"Ray job stop failed: {_short(str(exc))}") from exc
        except Exception as exc:
            self._reset()
            raise RunnerUnavailableError(f"Ray job stop failed: {type(exc).__name__}: {exc}") from exc

    def _connect(self) -> JobSubmissionClient:
        with self._lock:
            if self._client is None:
                try:
                    self._client = _client_with_timeout(self.address, self.timeout_seconds)
                except Exception as exc:  # ConnectionError, requests errors, a bad address
                    where = self.address or "the local Ray cluster (RAY_ADDRESS or `ray start --head`)"
                    raise RunnerUnavailableError(f"cannot reach {where}: {type(exc).__name__}: {exc}") from exc
            return self._client

    def _reset(self) -> None:
        with self._lock:
            self._client = None


def _client_with_timeout(address: str | None, timeout_seconds: float) -> JobSubmissionClient:
    from ray.job_submission import JobSubmissionClient

    class _Client(JobSubmissionClient):
        # The SDK sends its HTTP requests without a timeout; a hung dashboard must not hang the worker.
        def _do_request(self, method: str, endpoint: str, **kwargs: Any) -> Any:
            kwargs.setdefault("timeout", timeout_seconds)
            return super()._do_request(method, endpoint, **kwargs)

    return _Client(address)

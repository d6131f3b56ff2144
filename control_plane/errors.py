"""The control plane's error base, on top of `octavia.errors.OctaviaError` (polar `exceptions.py`).

Domain errors subclass these and set `code` / `status_code`; `exception_handlers.py` renders every one of them as
`{"error": {"code", "message", "details"}}`. Domain-specific errors live next to their service.
"""

from __future__ import annotations

from typing import Any, ClassVar

from octavia.errors import OctaviaError


class ApiError(OctaviaError):
    status_code = 400
    code = "bad_request"
    # True when the state changed before raising must still be committed (e.g. revoking a refresh-token family
    # after a reuse was detected); the request's session commits instead of rolling back.
    persist_changes: ClassVar[bool] = False

    def __init__(
        self, message: str, *, details: dict[str, Any] | None = None, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message, details=details)
        self.headers = headers or {}


class NotAuthenticatedError(ApiError):
    status_code = 401
    code = "not_authenticated"

    def __init__(self, message: str = "missing or invalid credentials", **kwargs: Any) -> None:
        kwargs.setdefault("headers", {"WWW-Authenticate": "Bearer"})
        super().__init__(message, **kwargs)


class PermissionDeniedError(ApiError):
    status_code = 403
    code = "permission_denied"


class ResourceNotFoundError(ApiError):
    status_code = 404
    code = "not_found"


class ConflictError(ApiError):
    status_code = 409
    code = "conflict"


class InvalidRequestError(ApiError):
    """Well-formed request the service refuses (bad cursor, bad token format, ...)."""

    status_code = 422
    code = "invalid_request"


class RateLimitedError(ApiError):
    status_code = 429
    code = "rate_limited"

    def __init__(self, retry_after_seconds: int) -> None:
        super().__init__(
            f"too many requests; retry in {retry_after_seconds} s",
            details={"retry_after_seconds": retry_after_seconds},
            headers={"Retry-After": str(retry_after_seconds)},
        )


class ServiceUnavailableError(ApiError):
    status_code = 503
    code = "service_unavailable"

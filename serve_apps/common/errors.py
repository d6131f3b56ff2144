"""Which failures are the caller's and which the server's, and how both look over HTTP."""

from __future__ import annotations

from typing import Any

from octavia.errors import OctaviaError

INTERNAL_ERROR = "internal_error"


def is_caller_error(exc: BaseException) -> bool:
    """Bad input (engines raise ValueError for bad arguments, BadInputError subclasses for unusable input)."""
    if isinstance(exc, OctaviaError):
        return exc.status_code < 500
    return isinstance(exc, ValueError)


def error_code(exc: BaseException) -> str:
    if isinstance(exc, OctaviaError):
        return exc.code
    return "bad_input" if isinstance(exc, ValueError) else INTERNAL_ERROR


def error_body(exc: BaseException) -> tuple[int, dict[str, Any]]:
    """(HTTP status, `{"error": {"code", "message", "details"}}`) for an exception."""
    if isinstance(exc, OctaviaError):
        return exc.status_code, {"error": exc.to_dict()}
    if isinstance(exc, ValueError):
        return 422, {"error": {"code": "bad_input", "message": str(exc), "details": {}}}
    # Internal failures keep their text out of the response (it can hold paths); the replica log has it.
    return 500, {"error": {"code": INTERNAL_ERROR, "message": "the server failed on this request", "details": {}}}

"""Every error leaves the API in one shape, mapped here and only here (polar `exception_handlers.py`):

    {"error": {"code": "<stable machine code>", "message": "<for humans>", "details": {...}}}

Domain errors (`OctaviaError` subclasses) carry their own code and status; FastAPI's request validation errors
become 422 `validation_error`; Starlette's HTTP errors (404 unknown route, 405 wrong method, ...) keep their status;
anything unexpected is a logged 500 `internal_error` that reveals nothing.
"""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from octavia.errors import OctaviaError

logger = logging.getLogger("control_plane")

_HTTP_CODES = {
    400: "bad_request",
    401: "not_authenticated",
    403: "permission_denied",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "rate_limited",
}


class ErrorBody(BaseModel):
    code: str = Field(description="stable, machine-readable error code")
    message: str
    details: dict[str, Any] = Field(default_factory=dict)


class ErrorResponse(BaseModel):
    error: ErrorBody


def error_response(
    status_code: int,
    code: str,
    message: str,
    details: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body = ErrorResponse(error=ErrorBody(code=code, message=message, details=details or {}))
    return JSONResponse(body.model_dump(mode="json"), status_code=status_code, headers=headers or None)


async def octavia_error_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, OctaviaError)
    if exc.status_code >= 500:
        logger.error("%s %s failed: %s", request.method, request.url.path, exc, exc_info=exc)
    return error_response(exc.status_code, exc.code, exc.message, exc.details, getattr(exc, "headers", None))


async def validation_error_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    # Never echo `input`: it can be a password.
    errors = [
        {"loc": [str(p) for p in e.get("loc", ())], "message": str(e.get("msg")), "type": str(e.get("type"))}
        for e in exc.errors()
    ]
    summary = "; ".join(f"{'.'.join(e['loc'])}: {e['message']}" for e in errors[:3])
    return error_response(422, "validation_error", f"invalid request: {summary}", {"errors": errors})


async def http_error_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    phrase = HTTPStatus(exc.status_code).phrase if exc.status_code in HTTPStatus._value2member_map_ else "error"
    message = exc.detail if isinstance(exc.detail, str) and exc.detail else phrase
    details: dict[str, Any] = {}
    if exc.status_code == 404:
        details = {"path": request.url.path}
    elif exc.status_code == 405:
        details = {"method": request.method, "path": request.url.path}
    code = _HTTP_CODES.get(exc.status_code, "http_error")
    return error_response(exc.status_code, code, message, details, dict(exc.headers or {}))


async def unhandled_error_handler(request: Request, exc: Exception) -> JSONResponse:
    logger.exception("%s %s crashed", request.method, request.url.path, exc_info=exc)
    return error_response(500, "internal_error", "internal server error")


def register_exception_handlers(app: FastAPI) -> None:
    app.add_exception_handler(OctaviaError, octavia_error_handler)
    app.add_exception_handler(RequestValidationError, validation_error_handler)
    app.add_exception_handler(StarletteHTTPException, http_error_handler)
    app.add_exception_handler(Exception, unhandled_error_handler)

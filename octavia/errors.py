"""One error hierarchy for the whole project.

Every error Octavia raises on purpose is an `OctaviaError`: it carries a stable machine-readable `code`, a
human message, optional `details`, and the HTTP status the control plane maps it to. The CLI prints
`error[code]: message` without a traceback; the API renders `{"error": {"code", "message", "details"}}`.
"""

from __future__ import annotations

from typing import Any


class OctaviaError(Exception):
    code = "octavia_error"
    status_code = 500

    def __init__(self, message: str, *, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or {}

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "details": self.details}


class BadInputError(OctaviaError):
    """The caller gave something Octavia cannot work with."""

    code = "bad_input"
    status_code = 422


class InputNotFoundError(BadInputError):
    code = "input_not_found"
    status_code = 404


class NotMediaError(BadInputError):
    code = "not_media"


class NoAudioStreamError(BadInputError):
    code = "no_audio_stream"


class EmptyMediaError(BadInputError):
    code = "empty_media"


class UnsupportedLanguageError(BadInputError):
    code = "unsupported_language"


class UnsupportedLanguagePairError(BadInputError):
    code = "unsupported_language_pair"


class ModelError(OctaviaError):
    """A model or its runtime is not usable on this machine."""

    code = "model_error"
    status_code = 503


class ModelNotAvailableError(ModelError):
    code = "model_not_available"


class ModelIntegrityError(ModelError):
    code = "model_integrity"


class MissingDependencyError(ModelError):
    code = "missing_dependency"


class MediaProcessingError(OctaviaError):
    """ffmpeg or another media tool failed on input that looked valid."""

    code = "media_processing_failed"
    status_code = 500


class StorageFullError(OctaviaError):
    """A file system the run writes to (the output folder, the artifact cache) has no space left."""

    code = "storage_full"
    status_code = 507

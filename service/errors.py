"""Typed errors of the product, each with a stable machine-readable code. Every error class
lives here (a test looks for any elsewhere).

``http_status`` is the one status the API answers a code with (a test holds each code to one
status and to its row in the README's error table); the core never reads it, the CLI prints
``code: message``. ``context`` must never carry a full offence text (texts can name people).
"""

from __future__ import annotations

from typing import Any


class ICCSError(Exception):
    """Base of every error the product raises on purpose."""

    code = "iccs_error"
    http_status = 500

    def __init__(self, message: str, **context: Any) -> None:
        super().__init__(message)
        self.message = message
        self.context: dict[str, Any] = context


class InvalidInput(ICCSError):
    """Input that is well-formed enough to read but breaks a rule."""

    code = "invalid_input"
    http_status = 422


class TableThresholdsMissing(InvalidInput):
    """A list asked to be coded as a table by a model entry built before table thresholds."""

    code = "table_thresholds_missing"

    def __init__(self, **context: Any) -> None:
        super().__init__(
            "This model has no table thresholds (it was built before they were learnt): "
            "retrain it with `iccs train` to code a list as a correspondence table.",
            **context,
        )


class UnknownCode(ICCSError):
    """A string that is not an ICCS v1.0 code."""

    code = "unknown_code"
    http_status = 404


class UnknownDecisionCode(InvalidInput):
    """A review decision names a well-formed code that is not in ICCS v1.0.

    Not ``unknown_code``: that one is a 404 for a code in the URL (the resource does not
    exist); here the item exists and the request body is what is wrong, hence 422.
    """

    code = "unknown_decision_code"


class InvalidCode(InvalidInput):
    """A malformed ICCS code string (wrong length, non-digits, missing leading zero)."""

    code = "invalid_code"


class TextTooLong(InvalidInput):
    """A record text above the configured length limit."""

    code = "text_too_long"
    http_status = 413


class BatchTooLarge(InvalidInput):
    """A batch with more records than allowed."""

    code = "batch_too_large"
    http_status = 413


class ModelNotFound(ICCSError):
    """No registered model with that version, or no promoted model at all."""

    code = "model_not_found"
    http_status = 404


class ServiceNotReady(ICCSError):
    """A part of the service is not ready yet (starting, or stopped); ``context["component"]``
    names which: ``model``, ``review_store``, ``key_store``, ``job_queue``."""

    code = "service_not_ready"
    http_status = 503

    def __init__(self, component: str, message: str | None = None, **context: Any) -> None:
        super().__init__(
            message or f"The {component} is not ready yet.",
            component=component.replace(" ", "_"),
            **context,
        )


class ModelNotReady(ServiceNotReady):
    """The service has no model loaded yet (its own code, which clients wait on)."""

    code = "model_not_ready"

    def __init__(self, message: str = "The model is not loaded yet.", **context: Any) -> None:
        super().__init__("model", message, **context)


class RegistryError(ICCSError):
    """A registry entry is incomplete or fails a check."""

    code = "registry_error"
    http_status = 500


class ExportCheckFailed(RegistryError):
    """ONNX parity or quantisation agreement below the bar: the entry is not written."""

    code = "export_check_failed"


class FileFormatError(InvalidInput):
    """A bulk input file that cannot be read as asked (missing column, unknown format)."""

    code = "file_format_error"


class FileTooLarge(FileFormatError):
    """A bulk file that would unpack to more than the service reads (an XLSX or Parquet bomb)."""

    code = "file_too_large"
    http_status = 413


class UploadTooLarge(InvalidInput):
    """An uploaded file above ``max_upload_bytes``."""

    code = "upload_too_large"
    http_status = 413


class Interrupted(ICCSError):
    """A bulk run asked to stop between two chunks (shutdown); its checkpoint lets it
    continue later. A job interrupted so goes back to the queue, so no route answers it."""

    code = "interrupted"
    http_status = 503


class NotFound(ICCSError):
    """A resource (review item, job, key) that does not exist."""

    code = "not_found"
    http_status = 404


class Conflict(ICCSError):
    """A state change that the current state forbids (item claimed by someone else, decided)."""

    code = "conflict"
    http_status = 409


class AuthError(ICCSError):
    """Missing or unknown API key."""

    code = "unauthenticated"
    http_status = 401


class Forbidden(ICCSError):
    """A valid key whose role does not allow the action."""

    code = "forbidden"
    http_status = 403


class DatabaseUnavailable(ICCSError):
    """The database does not answer, or is locked or full: try again later."""

    code = "database_unavailable"
    http_status = 503


class RateLimited(ICCSError):
    """Too many requests for one key in the current window."""

    code = "rate_limited"
    http_status = 429


class QuotaExceeded(RateLimited):
    """A key already has as many bulk jobs queued or running as it may (429, Retry-After)."""

    code = "job_quota_exceeded"


class ReviewQuotaExceeded(RateLimited):
    """A key already has as many open review items as it may (429, Retry-After); refused
    before anything it sent is coded (issue 16 #9)."""

    code = "review_quota_exceeded"


class Gone(ICCSError):
    """A resource whose content was removed on purpose (a job's files after retention)."""

    code = "gone"
    http_status = 410


class ModelIntegrityError(RegistryError):
    """A registry entry's files do not match the SHA-256 digests its manifest lists (changed,
    missing or extra files), or the entry predates digests: it is not loaded."""

    code = "model_integrity_error"

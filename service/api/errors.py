"""One error shape for every failure over HTTP: ``{"error", "detail", "status", "context"}``.

The core raises :class:`service.errors.ICCSError`; FastAPI and Starlette raise their own
validation and HTTP errors; anything else is a bug. All of them leave here in the same shape,
so clients need one parser. ``context`` never carries request bodies: validation errors keep
the location and message of each problem but drop the offending input (it may be a text that
names people).
"""

from __future__ import annotations

import json
import logging
from http import HTTPStatus
from typing import Any

import sqlalchemy.exc
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from service.errors import DatabaseUnavailable, ICCSError, InvalidInput, RateLimited

log = logging.getLogger(__name__)

# Stable codes for the HTTP errors that Starlette raises itself.
_HTTP_CODES = {
    400: "bad_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
    429: "rate_limited",
}


def error_body(
    code: str, detail: str, status: int, context: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The JSON body of an error answer."""
    return {"error": code, "detail": detail, "status": status, "context": context or {}}


def error_response(
    code: str,
    detail: str,
    status: int,
    context: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    """A JSON error answer in the one shape."""
    return JSONResponse(error_body(code, detail, status, context), status, headers=headers)


def iccs_error_body(exc: ICCSError) -> dict[str, Any]:
    """Error body of a core error (also used for per-item errors in a batch)."""
    return error_body(exc.code, exc.message, exc.http_status, _jsonable(exc.context))


def validation_context(errors: Any) -> dict[str, Any]:
    """Location, message and type of each validation problem, without the input values."""
    return {
        "errors": [
            {"loc": [str(p) for p in e.get("loc", ())], "msg": e.get("msg"), "type": e.get("type")}
            for e in errors
        ]
    }


def _jsonable(context: dict[str, Any]) -> dict[str, Any]:
    return {
        k: v if isinstance(v, str | int | float | bool | None | list | dict) else str(v)
        for k, v in context.items()
    }


async def _on_iccs_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ICCSError)
    headers: dict[str, str] = {}
    if exc.http_status == 401:
        headers["WWW-Authenticate"] = "Bearer"
    if isinstance(exc, RateLimited):
        headers["Retry-After"] = str(exc.context.get("retry_after", 1))
    return JSONResponse(iccs_error_body(exc), exc.http_status, headers=headers or None)


async def _on_validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    if any(e.get("type") == "json_invalid" for e in errors):
        return error_response(
            "invalid_json", "The request body is not valid JSON.", 422, validation_context(errors)
        )
    return error_response(
        "validation_error",
        "The request does not match the schema; see context.errors.",
        422,
        validation_context(errors),
    )


async def _on_http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    status = exc.status_code
    code = _HTTP_CODES.get(status, f"http_{status}")
    if status == 404:
        detail = f"No route {request.url.path}."
    elif status == 405:
        detail = f"{request.method} is not allowed on {request.url.path}."
    elif isinstance(exc.detail, str):
        detail = exc.detail
    else:
        detail = HTTPStatus(status).phrase
    # The body limit's own exception carries its limit (see service.api.limits.BodyTooLarge).
    limit = getattr(exc, "limit", None)
    context = {"limit_bytes": limit} if isinstance(limit, int) else None
    return error_response(code, detail, status, context, headers=dict(exc.headers or {}) or None)


# Seconds a client is asked to wait after a database error (a lock, a failover, a full disk).
DATABASE_RETRY_AFTER = 5
# Errors that say the database is unreachable, locked, full or timed out, not that the
# request is wrong: the same request may well succeed later.
DATABASE_UNAVAILABLE_ERRORS = (
    sqlalchemy.exc.OperationalError,
    sqlalchemy.exc.InterfaceError,
    sqlalchemy.exc.DisconnectionError,
    sqlalchemy.exc.TimeoutError,
)


async def _on_database_unavailable(request: Request, exc: Exception) -> JSONResponse:
    # Only the error's class is logged: a driver's message can quote the statement.
    request_id = getattr(request.state, "request_id", None)
    log.warning(
        json.dumps(
            {
                "event": "database_unavailable",
                "error": type(getattr(exc, "orig", None) or exc).__name__,
                "request_id": request_id,
            }
        )
    )
    err = DatabaseUnavailable(
        "The database is unavailable or busy; retry later.",
        request_id=request_id,
        retry_after=DATABASE_RETRY_AFTER,
    )
    return JSONResponse(
        iccs_error_body(err),
        err.http_status,
        headers={"Retry-After": str(DATABASE_RETRY_AFTER)},
    )


async def _on_unstorable_value(request: Request, exc: Exception) -> JSONResponse:
    # The database refused a value (an id past INTEGER's range, a NUL in a text on PostgreSQL):
    # the request carried it, so it is the client's to fix. The message may quote the value.
    request_id = getattr(request.state, "request_id", None)
    log.warning(
        json.dumps(
            {
                "event": "unstorable_value",
                "error": type(getattr(exc, "orig", None) or exc).__name__,
                "request_id": request_id,
            }
        )
    )
    err = InvalidInput(
        "A value in the request cannot be stored (a number out of range, or a NUL character).",
        request_id=request_id,
    )
    return JSONResponse(iccs_error_body(err), err.http_status)


async def _on_unexpected(request: Request, exc: Exception) -> JSONResponse:
    # The traceback goes to the log (ServerErrorMiddleware re-raises for the server to log
    # too); the client gets the shape and the request id to quote, not the internals.
    request_id = getattr(request.state, "request_id", None)
    return error_response(
        "internal_error",
        "An unexpected error occurred; it has been logged.",
        500,
        {"request_id": request_id},
    )


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers that give every error the one shape."""
    app.add_exception_handler(ICCSError, _on_iccs_error)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(StarletteHTTPException, _on_http_error)
    for db_error in DATABASE_UNAVAILABLE_ERRORS:
        app.add_exception_handler(db_error, _on_database_unavailable)
    app.add_exception_handler(sqlalchemy.exc.DataError, _on_unstorable_value)
    app.add_exception_handler(Exception, _on_unexpected)

"""OpenAPI descriptions of the error answers, so /docs shows the one error shape per route."""

from __future__ import annotations

from typing import Any

from service.api.v1.schemas import ErrorResponse

_MEANING = {
    401: "Missing, unknown or revoked API key.",
    403: "The key's role does not allow this route.",
    404: "Unknown resource.",
    413: "Body, text or batch larger than the service's limits.",
    422: "The request does not match the schema, or a value is out of bounds.",
    429: "Rate limit of the key exceeded; see the Retry-After header.",
    503: "The model or the database is not ready.",
}


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` argument for a route that can answer these error statuses."""
    return {s: {"model": ErrorResponse, "description": _MEANING[s]} for s in statuses}

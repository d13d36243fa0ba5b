"""What every resource shares: the error shape, the health answer, storable strings and ids."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, Field

Status = Literal["auto", "review", "rejected"]
Source = Literal["model", "review_memory"]

# NUL cannot be stored in a PostgreSQL text column, and an unpaired surrogate (JSON allows
# "\ud800") cannot be encoded as UTF-8 at all: both would fail deep inside the database
# layer (or on SQLite, after the record was coded), so they are refused at the edge.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def check_storable(value: str) -> str:
    """``value`` unchanged, or a ValueError when it holds NUL or an unpaired surrogate."""
    if _UNSTORABLE.search(value):
        raise ValueError(
            "holds a NUL character or an unpaired UTF-16 surrogate, which cannot be stored"
        )
    return value


StorableStr = Annotated[str, AfterValidator(check_storable)]

# A stored row id: positive and within the databases' INTEGER.
ItemId = Annotated[int, Field(ge=1, le=2**31 - 1)]


class ErrorResponse(BaseModel):
    """The one error shape of the API."""

    error: str = Field(description="Stable machine-readable code.", examples=["text_too_long"])
    detail: str = Field(
        description="Human-readable explanation.",
        examples=["The text is 2412 characters long; the limit is 2000."],
    )
    status: int = Field(description="The HTTP status, repeated in the body.", examples=[413])
    context: dict[str, Any] = Field(
        description="Facts about the error (limits, field locations); never the record text.",
        examples=[{"length": 2412, "limit": 2000}],
    )


class HealthResponse(BaseModel):
    """Liveness or readiness."""

    status: Literal["ok"] = Field(description="Always `ok` when answered with 200.")
    checks: dict[str, str] = Field(
        default_factory=dict,
        description="Readiness checks and their results.",
        examples=[{"model": "20250101-120000", "database": "ok"}],
    )

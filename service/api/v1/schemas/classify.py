"""POST /v1/classify and /v1/classify/batch: requests and answers."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from service.api.v1.schemas.common import (
    ErrorResponse,
    Source,
    Status,
    StorableStr,
)
from service.config import HIGHEST_PRECISION, LOWEST_PRECISION


class ClassifyRequest(BaseModel):
    """One offence record to code."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"text": "ASSLT W/DW", "id": "CASE-2024-000123", "top_k": 3}]
        },
    )

    text: StorableStr = Field(
        description=(
            "The offence description as the agency wrote it, in any language. Empty or "
            "non-offence texts are not errors: they come back `rejected` with a reason. Longer "
            "than the service's `max_text_length` setting (default 2000): error 413. A NUL "
            "character or an unpaired surrogate: error 422."
        ),
        examples=["ASSLT W/DW"],
    )
    id: StorableStr | None = Field(
        None,
        max_length=200,
        description="Your identifier for the record, echoed back and stored with review items.",
        examples=["CASE-2024-000123"],
    )
    language: str | None = Field(
        None,
        max_length=35,
        pattern=r"^[A-Za-z]{2,8}(-[A-Za-z0-9]{1,8})*$",
        description=(
            "BCP 47 language tag of the text, if known (e.g. `ko`, `es-CL`). The answer's "
            "`language` then reports its primary subtag instead of the detected language; "
            "the model reads every language the same way and does not need it."
        ),
        examples=["en"],
    )
    top_k: int = Field(
        5, ge=1, le=20, description="How many suggestions to return (1-20).", examples=[3]
    )
    min_precision: float | None = Field(
        None,
        ge=LOWEST_PRECISION,
        le=HIGHEST_PRECISION,
        description=(
            "Target precision for automatic coding of this record, instead of the service's "
            "default. Must lie between the operator's `min_precision_floor` (default 0.80) and "
            "0.999; a higher value sends more records to review."
        ),
        examples=[0.97],
    )
    table_precision: float | None = Field(
        None,
        ge=LOWEST_PRECISION,
        le=HIGHEST_PRECISION,
        description=(
            "The record is one entry of a national list being coded as a correspondence table: "
            "auto-code its top code whole when it clears the table threshold learnt for this "
            "target precision of the finished table (see `GET /v1/models/active`), else decide "
            "level by level as usual. Same bounds as `min_precision`; a model trained without "
            "table thresholds answers 422 `table_thresholds_missing`."
        ),
        examples=[0.97],
    )


class SuggestionOut(BaseModel):
    """A candidate ICCS code with its calibrated confidence."""

    code: str = Field(description="ICCS v1.0 code (2, 4, 5 or 6 digits).", examples=["02011"])
    label: str = Field(description="Official ICCS title of the code.", examples=["Serious assault"])
    level: int = Field(
        description="1 section, 2 division, 3 group, 4 class.", ge=1, le=4, examples=[3]
    )
    path: list[str] = Field(
        description="Codes from the section down to this code.", examples=[["02", "0201", "02011"]]
    )
    confidence: float = Field(
        description="Calibrated probability that this code is right (0..1).",
        ge=0,
        le=1,
        examples=[0.93],
    )


class AssignedOut(BaseModel):
    """The code the system commits to on its own."""

    code: str = Field(
        description="The assigned code: the top suggestion or an ancestor that is sure enough.",
        examples=["0201"],
    )
    label: str = Field(description="Official ICCS title.", examples=["Assaults and threats"])
    level: int = Field(description="1 section .. 4 class.", ge=1, le=4, examples=[2])
    confidence: float = Field(
        description="Calibrated probability that the assigned code is right.",
        ge=0,
        le=1,
        examples=[0.98],
    )


class LanguageOut(BaseModel):
    """The record's language."""

    code: str = Field(
        description="ISO 639-1 code (`und` when the text has no letters).", examples=["ko"]
    )
    confidence: float = Field(
        description="How sure the detector is (1 for a tag the client sent or a script that "
        "only one supported language uses). Short police shorthand is often unsure.",
        ge=0,
        le=1,
        examples=[0.98],
    )
    source: Literal["client", "detected"] = Field(
        description="`client`: the request's `language`; `detected`: from the text.",
        examples=["detected"],
    )


class ClassifyResponse(BaseModel):
    """The answer for one record."""

    id: str | None = Field(description="The record's `id` when one was sent.", examples=["CASE-1"])
    request_id: str = Field(
        description="Id of the HTTP request (also in the X-Request-ID header); quote it in "
        "support questions.",
        examples=["3f2b9c0e8a5d4e1f9b7c6d5e4f3a2b1c"],
    )
    status: Status = Field(
        description=(
            "`auto`: coded automatically (see `assigned`); `review`: queued for a human "
            "(see `review_id`); `rejected`: not an offence description (see `reason`)."
        ),
        examples=["auto"],
    )
    reason: str | None = Field(
        description="Why a record was rejected: `empty_text`, `no_words`, `placeholder` (the "
        'whole text only points elsewhere or holds nothing: "see file", "TBC"), '
        "`not_an_offence`.",
        examples=[None],
    )
    assigned: AssignedOut | None = Field(
        description="The committed code, possibly backed off to a shallower level; null unless "
        "`status` is `auto`."
    )
    suggestions: list[SuggestionOut] = Field(
        description="Top-k candidate codes, most likely first (empty for rejected texts)."
    )
    review_id: int | None = Field(
        description="Id of the review item when the record was queued for review.",
        examples=[None],
    )
    source: Source = Field(
        description="`model`, or `review_memory` when a reviewer already coded this exact text.",
        examples=["model"],
    )
    model_version: str = Field(
        description="Registry version of the model that answered.", examples=["20250101-120000"]
    )
    taxonomy_version: str = Field(description="Version of ICCS used.", examples=["ICCS v1.0"])
    language: LanguageOut = Field(description="The record's language, sent or detected.")
    relied_on: list[int] = Field(
        default_factory=list,
        description=(
            "Review item ids of the reviewers' decisions this answer relied on: with `source` "
            "`review_memory`, the decision whose code was reused; with `model`, the decided "
            "examples (nearest first, at most 5) more similar to this text than any training "
            "example of the answer's code (the assigned code, else the top suggestion), which "
            "raised that code's score. Empty when no decision played a part."
        ),
        examples=[[1042]],
    )
    not_an_offence_probability: float | None = Field(
        None,
        description=(
            "The model's probability (0..1) that the text is not an offence description at "
            "all (a warrant, a registration, found property). The service rejects the record "
            "(`reason` `not_an_offence`) from `reject_threshold` of `GET /v1/models/active` "
            "up; below it the record is coded or reviewed as usual. Null when the model did "
            "not score the text: rejected by rule, answered from review memory, or a model "
            "without a not-an-offence class."
        ),
        ge=0,
        le=1,
        examples=[0.03],
    )


class BatchRequest(BaseModel):
    """Several records coded in one inference pass."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"items": [{"text": "ASSLT W/DW", "id": "1"}, {"text": "theft of a bicycle"}]}
            ]
        },
    )

    # Items are checked one by one in the route (not here) so that one bad item yields a
    # per-item error instead of failing the whole batch.
    items: list[Any] = Field(
        description=(
            "Records, each shaped like the body of POST /v1/classify. At most `max_batch_size` "
            "(default 1000) items, else 413. An invalid item gets an error entry in `results`; "
            "the others are still coded."
        ),
        json_schema_extra={"items": {"$ref": "#/components/schemas/ClassifyRequest"}},
    )


class BatchItemError(BaseModel):
    """An item of a batch that could not be coded."""

    index: int = Field(description="Position of the item in `items` (from 0).", examples=[2])
    id: str | None = Field(
        None, description="The item's `id` when it could be read.", examples=["CASE-3"]
    )
    error: ErrorResponse = Field(description="Why, in the API's one error shape.")


class BatchResponse(BaseModel):
    """Results in input order: a classification or an error per item."""

    request_id: str = Field(description="Id of the HTTP request.", examples=["3f2b9c0e8a5d4e1f"])
    results: list[ClassifyResponse | BatchItemError] = Field(
        description="One entry per input item, in input order."
    )

"""Request and response schemas of the v1 API; every field has a description and an example."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from service.config import HIGHEST_PRECISION, LOWEST_PRECISION

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
        description="Why a record was rejected: `empty_text`, `no_words`, `not_an_offence`.",
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


class CategoryRef(BaseModel):
    """A code and its title."""

    code: str = Field(description="ICCS code.", examples=["0201"])
    label: str = Field(description="Official ICCS title.", examples=["Assaults and threats"])


class CategoryOut(BaseModel):
    """One ICCS category."""

    code: str = Field(description="ICCS code.", examples=["0201"])
    label: str = Field(description="Official ICCS title.", examples=["Assaults and threats"])
    level: int = Field(description="1 section .. 4 class.", ge=1, le=4, examples=[2])
    level_name: str = Field(description="section, division, group or class.", examples=["division"])
    parent: str | None = Field(description="Parent code; null for sections.", examples=["02"])


class CategoryTree(CategoryOut):
    """A category with its subcategories nested."""

    children: list[CategoryTree] = Field(description="Subcategories in the standard's order.")


class CategoryDetail(CategoryOut):
    """A category with its path and children."""

    is_leaf: bool = Field(description="True when it has no subcategories.", examples=[False])
    path: list[CategoryRef] = Field(description="From the section down to this category.")
    children: list[CategoryRef] = Field(description="Direct subcategories.")
    taxonomy_version: str = Field(description="Version of ICCS.", examples=["ICCS v1.0"])


class TaxonomyResponse(BaseModel):
    """The ICCS tree, or a flat list of categories."""

    taxonomy_version: str = Field(description="Version of ICCS.", examples=["ICCS v1.0"])
    format: Literal["tree", "flat"] = Field(description="Shape of `categories`.", examples=["tree"])
    categories: list[CategoryTree] | list[CategoryOut] = Field(
        description="Sections with nested children (tree) or categories in code order (flat)."
    )


class TaxonomySearchResponse(BaseModel):
    """Categories whose title matches the query."""

    query: str = Field(description="The query as received.", examples=["assault"])
    taxonomy_version: str = Field(description="Version of ICCS.", examples=["ICCS v1.0"])
    results: list[CategoryOut] = Field(description="Best matches first.")


class ModelSummary(BaseModel):
    """A registered model version."""

    version: str = Field(description="Registry version.", examples=["20250101-120000"])
    created_at: str | None = Field(
        description="When it was trained.", examples=["2025-01-01T12:00:00+00:00"]
    )
    promoted: bool = Field(description="True for the promoted (active) version.", examples=[True])
    serving: bool = Field(
        description="True for the version this process has loaded.", examples=[True]
    )
    complete: bool = Field(
        description="True when its binaries are built on this machine.", examples=[True]
    )
    metrics_summary: dict[str, Any] = Field(
        description="Headline evaluation metrics from the manifest.",
        examples=[{"accuracy_class": 0.86, "ece": 0.03}],
    )


class ModelsResponse(BaseModel):
    """Registered models."""

    promoted: str | None = Field(description="The promoted version.", examples=["20250101-120000"])
    serving: str = Field(description="The version this process serves.", examples=["20250101-1"])
    models: list[ModelSummary] = Field(description="Every registered version, oldest first.")


class ActiveModelResponse(BaseModel):
    """The model this process serves, with its decision thresholds."""

    version: str = Field(description="Registry version.", examples=["20250101-120000"])
    promoted: bool = Field(
        description="False when a newer version was promoted after this process started "
        "(restart to serve it) or `model_version` pins another one.",
        examples=[True],
    )
    taxonomy_version: str = Field(description="Version of ICCS.", examples=["ICCS v1.0"])
    created_at: str | None = Field(description="When it was trained.", examples=["2025-01-01"])
    target_precision: float = Field(
        description="Precision of automatic coding the thresholds are for: the service's "
        "default, or the `min_precision` asked for.",
        examples=[0.95],
    )
    thresholds: dict[str, float | None] = Field(
        description="Confidence threshold per level (1..4) at that precision; above 1 when no "
        "confidence reaches it at that level (nothing is auto-coded there).",
        examples=[{"2": 0.81, "3": 0.88, "4": 0.93}],
    )
    int8: bool = Field(
        description="True when the int8-quantised encoder is loaded (an entry that ships none "
        "is served with fp32 even when `ICCS_USE_INT8` asks for int8).",
        examples=[False],
    )
    encoder: Literal["fp32", "int8"] = Field(
        description="The encoder loaded: fp32 or int8.", examples=["fp32"]
    )
    multilingual_channel: str | None = Field(
        description="The multilingual embedding channel joined to the encoder (null: none).",
        examples=["usem3"],
    )
    metrics_summary: dict[str, Any] = Field(
        description="Headline evaluation metrics from the manifest.",
        examples=[{"accuracy_class": 0.86, "ece": 0.03}],
    )
    loaded_at: datetime | None = Field(description="When this process loaded the model.")


class HealthResponse(BaseModel):
    """Liveness or readiness."""

    status: Literal["ok"] = Field(description="Always `ok` when answered with 200.")
    checks: dict[str, str] = Field(
        default_factory=dict,
        description="Readiness checks and their results.",
        examples=[{"model": "20250101-120000", "database": "ok"}],
    )


# --- reviews ------------------------------------------------------------------------------

ReviewStatusName = Literal["pending", "claimed", "decided", "disputed"]
ReviewOrderName = Literal["confidence", "occurrences", "newest"]


class ReviewSuggestion(BaseModel):
    """A code the model suggested for a review item, with the titles along its path."""

    code: str = Field(description="Suggested ICCS code.", examples=["0201"])
    label: str = Field(description="Its ICCS title.", examples=["Assaults and threats"])
    level: int = Field(description="1 section, 2 division, 3 group, 4 class.", examples=[2])
    path: list[CategoryRef] = Field(description="From the section down to the code, with titles.")
    confidence: float | None = Field(
        description="Calibrated probability that the code is right.", examples=[0.62]
    )


class DecisionOut(BaseModel):
    """One reviewer decision on the item."""

    reviewer: str = Field(description="Name of the reviewer's API key.", examples=["alice"])
    action: str = Field(description="accept, correct, reject or skip.", examples=["accept"])
    code: str | None = Field(description="Code chosen (not_an_offence for reject).")
    at: datetime = Field(description="When (UTC).")
    note: str | None = Field(None, description="The reviewer's note.")


class ReviewItemResponse(BaseModel):
    """A review item as reviewers see it."""

    id: int = Field(description="Item id.", examples=[42])
    text: str = Field(description="The record text.", examples=["ASSLT W/DW"])
    record_id: str | None = Field(description="Caller's record id, when given.")
    origin: str = Field(description="api, bulk or job.", examples=["api"])
    batch: str | None = Field(description="Batch or job the item came from.")
    occurrences: int = Field(description="Records with this text waiting in the batch.")
    status: str = Field(description="pending, claimed, decided or disputed.")
    suggestions: list[ReviewSuggestion] = Field(description="The model's top suggestions.")
    top_code: str | None = Field(description="The model's first suggestion.")
    top_confidence: float | None = Field(description="Its calibrated confidence.")
    section: str | None = Field(description="Section of the first suggestion.", examples=["02"])
    model_version: str | None = Field(description="Model that made the suggestions.")
    claimed_by: str | None = Field(description="Reviewer holding the lease.")
    claim_expires_at: datetime | None = Field(description="When the lease runs out (UTC).")
    decision: str | None = Field(description="Final action: accept, correct or reject.")
    decided_code: str | None = Field(description="Final code (not_an_offence for reject).")
    decided_label: str | None = Field(description="ICCS title of the final code.")
    decided_by: str | None = Field(description="Reviewer of the final decision.")
    decided_at: datetime | None = Field(description="When it was decided (UTC).")
    note: str | None = Field(description="Note of the final decision.")
    created_at: datetime = Field(description="When the item was queued (UTC).")
    reviews_required: int = Field(description="1, or 2 for double review (3 once disputed).")
    reviews_done: int = Field(description="Final decisions recorded so far.")
    decisions: list[DecisionOut] = Field(
        description="Decisions so far (empty in listings); other reviewers' decisions are "
        "hidden while a double-reviewed item is open, so each reviewer decides independently."
    )


class ReviewListResponse(BaseModel):
    """One page of the queue."""

    items: list[ReviewItemResponse]
    total: int = Field(description="Items matching the filters.", examples=[130])
    limit: int = Field(description="Page size.", examples=[50])
    offset: int = Field(description="Offset of this page.", examples=[0])


class ClaimNextRequest(BaseModel):
    """Filters for claiming the next item; all optional."""

    model_config = ConfigDict(extra="forbid")
    section: str | None = Field(None, description="Only this suggested section.", examples=["05"])
    batch: str | None = Field(None, description="Only this batch.")
    origin: str | None = Field(None, description="Only api, bulk or job items.")
    min_confidence: float | None = Field(None, ge=0, le=1, description="Lowest confidence.")
    max_confidence: float | None = Field(None, ge=0, le=1, description="Highest confidence.")
    order: ReviewOrderName = Field(
        "confidence", description="confidence (lowest first) or occurrences (most first)."
    )


class ClaimNextResponse(BaseModel):
    """The claimed item, or null when nothing is left for this reviewer."""

    item: ReviewItemResponse | None


class DecisionRequest(BaseModel):
    """A reviewer's decision."""

    model_config = ConfigDict(extra="forbid")
    action: Literal["accept", "correct", "reject", "skip"] = Field(
        description="accept a suggestion, correct to any ICCS code, reject as not an "
        "offence, or skip.",
        examples=["correct"],
    )
    code: str | None = Field(
        None,
        max_length=20,
        description="accept: one of the suggestions (default the first); correct: any ICCS "
        "code at any level.",
        examples=["020111"],
    )
    note: str | None = Field(None, max_length=2000, description="Optional note for the audit.")


class AuditEntryResponse(BaseModel):
    """One state change of an item."""

    at: datetime = Field(description="When (UTC).")
    actor: str = Field(description="Reviewer key name, or 'system'.", examples=["alice"])
    action: str = Field(description="What happened.", examples=["claimed"])
    from_status: str | None = Field(description="Status before.")
    to_status: str | None = Field(description="Status after.")
    from_code: str | None = Field(
        description="Code before (the model's suggestion, or the first reviewer's code when "
        "two disagree; hidden from other reviewers while double review is open)."
    )
    to_code: str | None = Field(description="Code after.")
    model_version: str | None = Field(description="Model that suggested the item's codes.")
    note: str | None = Field(description="Note.")


class HistoryResponse(BaseModel):
    """An item's audit trail, oldest first."""

    item_id: int
    entries: list[AuditEntryResponse]


class AgreementResponse(BaseModel):
    """Agreement of two reviewers on the items both decided."""

    pairs: int = Field(description="Items with two independent decisions.", examples=[40])
    agreeing: int = Field(description="Of those, items where both chose the same code.")
    rate: float | None = Field(description="agreeing / pairs.", examples=[0.85])
    kappa: float | None = Field(description="Cohen's kappa over the codes.", examples=[0.83])


class StatsResponse(BaseModel):
    """Progress summary."""

    reviewer: str | None = Field(
        None,
        description="Name of the caller's key (the page shows who is signed in).",
        examples=["alice"],
    )
    reviewed_today: int = Field(description="Decisions (not skips) since 00:00 UTC.")
    reviewed_today_by_you: int | None = Field(description="Of those, by the caller.")
    remaining: int = Field(description="Items not yet decided.")
    remaining_occurrences: int = Field(description="Records those items stand for.")
    decided: int = Field(description="Items decided.")
    by_status: dict[str, int] = Field(description="Items per status.")
    pending_by_section: dict[str, int] = Field(description="Open items per suggested section.")
    model_agreement: float | None = Field(
        description="Share of decided items whose final code is the model's first suggestion."
    )
    model_agreement_n: int = Field(description="Decided items behind model_agreement.")
    inter_reviewer: AgreementResponse


class DoubleReviewRequest(BaseModel):
    """Items to review twice, by id or a share of a batch."""

    model_config = ConfigDict(extra="forbid")
    item_ids: list[ItemId] | None = Field(None, max_length=10_000, description="Item ids.")
    batch: str | None = Field(None, description="A batch.")
    # Bounded below: the store takes every round(1/share)-th item.
    share: float = Field(
        1.0, ge=0.0001, le=1, description="Share of the batch's open items (0.0001 to 1)."
    )


class DoubleReviewResponse(BaseModel):
    """How many items now need two reviews."""

    flagged: int


class MemoryRetireResponse(BaseModel):
    """The retired decision-memory entry."""

    text_key: str
    code: str
    retired_by: str | None
    retired_at: datetime | None


# --- jobs ---------------------------------------------------------------------------------


class JobCounts(BaseModel):
    """Row counts by status of a finished job."""

    auto: int = Field(0, description="Rows coded automatically.", examples=[81234])
    review: int = Field(0, description="Rows whose text needs a reviewer.", examples=[15800])
    rejected: int = Field(0, description="Unusable or non-offence rows.", examples=[2966])


class JobResponse(BaseModel):
    """State of a bulk job."""

    id: str = Field(description="Job id.", examples=["3f1c2a8e-5b7d-4a11-9c1e-2b0f6f6d1e42"])
    status: Literal["queued", "running", "done", "failed"] = Field(
        description="queued -> running -> done | failed.", examples=["running"]
    )
    filename: str = Field(description="Name of the uploaded file.", examples=["crimes_2019.csv"])
    rows_done: int = Field(description="Rows coded so far.", examples=[40000])
    rows_total: int | None = Field(
        description="Rows in the file (estimated from line breaks for CSV until done).",
        examples=[100000],
    )
    progress: float | None = Field(
        description="rows_done / rows_total, 0..1; null while unknown.", examples=[0.4]
    )
    counts: JobCounts | None = Field(description="Rows by status, once done.")
    distinct_texts: int | None = Field(
        description="Distinct normalised texts classified, once done.", examples=[4210]
    )
    dedupe_ratio: float | None = Field(
        description="Rows per distinct text, once done.", examples=[23.8]
    )
    model_version: str | None = Field(
        description="Model that coded the file, once done.", examples=["20260101-120000-a1b2c3"]
    )
    error: str | None = Field(
        description="Why the job failed (code: message).",
        examples=["file_format_error: Column 'text' is not in the file."],
    )
    attempts: int = Field(
        description="Times a worker started the job (a job whose worker died is resumed by "
        "another; after ICCS_JOB_MAX_ATTEMPTS starts it fails).",
        examples=[1],
    )
    options: dict[str, Any] = Field(
        description="The options the job runs with.",
        examples=[{"text_column": "offence", "output_format": "csv"}],
    )
    created_at: datetime = Field(description="When the job was submitted (UTC).")
    started_at: datetime | None = Field(description="When coding (last) started.")
    finished_at: datetime | None = Field(description="When the job ended.")
    purged_at: datetime | None = Field(
        None, description="When retention removed the job's files (the counts stay)."
    )
    result_url: str | None = Field(
        description="Where to download the coded file, once done.",
        examples=["/v1/jobs/3f1c2a8e-5b7d-4a11-9c1e-2b0f6f6d1e42/result"],
    )


class MemoryEntryResponse(BaseModel):
    """A decision-memory entry (without its text, which can name people)."""

    text_key: str = Field(description="Key of the normalised text.", examples=["3f2a..."])
    code: str = Field(description="The remembered code (not_an_offence for reject).")
    item_id: int | None = Field(description="Review item the newest decision was made on.")
    decided_by: str = Field(description="Reviewer of the newest decision.", examples=["alice"])
    decided_at: datetime = Field(description="When (UTC).")
    agreeing: int = Field(description="Reviewers whose latest code for the text is this one.")
    active: bool = Field(
        description="Applied automatically to identical texts: enough reviewers agree "
        "(ICCS_MEMORY_MIN_AGREEING), or an admin decided, and not retired."
    )
    retired_by: str | None = Field(description="Admin who retired it, if retired.")
    retired_at: datetime | None = Field(description="When it was retired (UTC).")


class MemoryListResponse(BaseModel):
    """Decision-memory entries, newest first."""

    entries: list[MemoryEntryResponse]

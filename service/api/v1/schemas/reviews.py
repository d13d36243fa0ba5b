"""/v1/reviews: the review queue, decisions, audit history, agreement and decision memory."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from service.api.v1.schemas.common import ItemId
from service.api.v1.schemas.taxonomy import CategoryRef

ReviewStatusName = Literal["pending", "claimed", "decided", "disputed", "auto_coded"]
ReviewOrderName = Literal["confidence", "occurrences", "newest", "value"]


class ReviewSuggestion(BaseModel):
    """A code the model suggested for a review item, with the titles along its path."""

    code: str = Field(description="Suggested ICCS code.", examples=["0201"])
    label: str = Field(description="Its ICCS title.", examples=["Assaults and threats"])
    level: int = Field(description="1 section, 2 division, 3 group, 4 class.", examples=[2])
    path: list[CategoryRef] = Field(description="From the section down to the code, with titles.")
    confidence: float | None = Field(
        description="Calibrated probability that the code is right.", examples=[0.62]
    )


class DecidedNeighbourOut(BaseModel):
    """An already-decided item near this one: a decision that drives its suggestion."""

    item_id: int = Field(description="The decided review item.", examples=[17])
    text: str = Field(description="Its text.", examples=["ASSAULT W/ DEADLY WEAPON"])
    code: str = Field(description="The code reviewers gave it.", examples=["020111"])
    similarity: float = Field(
        description="Cosine similarity of the two texts in the model's nearest-example space.",
        examples=[0.87],
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
    status: str = Field(
        description="pending, claimed, decided, disputed, or auto_coded (the model coded it "
        "on its own after a reviewer decided a similar item of its list)."
    )
    suggestions: list[ReviewSuggestion] = Field(description="The model's top suggestions.")
    top_code: str | None = Field(description="The model's first suggestion.")
    top_confidence: float | None = Field(description="Its calibrated confidence.")
    section: str | None = Field(description="Section of the first suggestion.", examples=["02"])
    model_version: str | None = Field(description="Model that made the suggestions.")
    min_precision: float | None = Field(
        None,
        description="Target precision its records were coded at (the strictest when several; "
        "null: the service's default).",
    )
    table_precision: float | None = Field(
        None,
        description="Set when it is an entry of a national list coded as a correspondence "
        "table: that table's target precision, which re-scoring after a decision keeps.",
    )
    non_offence_probability: float | None = Field(
        None,
        description="The model's probability (0..1) that the text is not an offence "
        "description (kept up to date by re-scoring); the page flags the item from 0.2. Null "
        "when the model did not score it or the item was queued before it was kept.",
        ge=0,
        le=1,
        examples=[0.62],
    )
    claimed_by: str | None = Field(description="Reviewer holding the lease.")
    claim_expires_at: datetime | None = Field(description="When the lease runs out (UTC).")
    decision: str | None = Field(
        description="Final action: accept, correct or reject (auto_coded: the model's code)."
    )
    decided_code: str | None = Field(description="Final code (not_an_offence for reject).")
    decided_label: str | None = Field(description="ICCS title of the final code.")
    decided_by: str | None = Field(
        description="Reviewer of the final decision ('system' for auto_coded)."
    )
    decided_at: datetime | None = Field(description="When it was decided (UTC).")
    note: str | None = Field(description="Note of the final decision.")
    created_at: datetime = Field(description="When the item was queued (UTC).")
    reviews_required: int = Field(description="1, or 2 for double review (3 once disputed).")
    reviews_done: int = Field(description="Final decisions recorded so far.")
    decisions: list[DecisionOut] = Field(
        description="Decisions so far (empty in listings); other reviewers' decisions are "
        "hidden while a double-reviewed item is open, so each reviewer decides independently."
    )
    priority: float | None = Field(
        None,
        description="Expected value of deciding it (queue order 'value'): uncertainty "
        "(1 - top_confidence) times the records the decision would settle, its own and those "
        "of the similar pending items of its list.",
        examples=[412.5],
    )
    neighbours: list[DecidedNeighbourOut] = Field(
        default_factory=list,
        description="The (up to 3) already-decided items nearest this text, which drive its "
        "suggestion through the nearest examples (GET of one item only; empty in listings and "
        "without a loaded model). Items still under blind double review are never shown.",
    )


class RescoringOut(BaseModel):
    """What the decision did to the similar pending items of the item's list."""

    considered: int = Field(description="Pending items of the list the model looked at again.")
    auto_coded: list[int] = Field(
        description="Items the model now codes on its own: they left the queue (auto_coded)."
    )
    moved: list[int] = Field(description="Items whose top suggestion changed.")
    failed: bool = Field(
        False, description="Re-scoring failed (logged); the decision itself is recorded."
    )


class DecisionResponse(ReviewItemResponse):
    """The decided item, and what re-scoring its list did."""

    rescoring: RescoringOut | None = Field(
        None,
        description="Set when the decision settled the item and a model is loaded: pending "
        "items of the same list (batch, else origin) are re-scored with the new decision.",
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
        "confidence",
        description="confidence (lowest first), occurrences (most first), newest, or value "
        "(expected value of a decision, highest first).",
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
    auto_coded: int = Field(
        0, description="Items the model coded after a reviewer decided a similar item."
    )
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

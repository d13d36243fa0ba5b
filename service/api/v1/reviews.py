"""Review queue over HTTP: list, claim, decide, history, progress, double review, memory.

A thin layer: requests become calls on :class:`service.review.store.ReviewStore` and its
results become the schemas below. The reviewer's identity is the name of their API key.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, ConfigDict, Field

from service.api.deps import Admin, Reviewer, StoreDep
from service.api.v1.responses import error_responses
from service.api.v1.schemas import ErrorResponse
from service.auth import MANAGE, Principal
from service.db import AuditEntry, ReviewDecision, ReviewItem
from service.review.store import (
    DECIDED,
    FINAL_ACTIONS,
    ItemFilter,
    ReviewStore,
    Stats,
    aware,
)
from service.taxonomy import load_taxonomy

# Mounted under /v1 by service.main, like every v1 router.
router = APIRouter(prefix="/reviews", tags=["reviews"])

_CONFLICT: dict[int | str, dict[str, Any]] = {
    409: {
        "model": ErrorResponse,
        "description": "Claimed by another reviewer, already decided, or already reviewed by "
        "you (double review).",
    }
}


def _errors(*statuses: int, conflict: bool = False) -> dict[int | str, dict[str, Any]]:
    out = error_responses(401, 403, 429, *statuses)
    return {**out, **_CONFLICT} if conflict else out


StatusName = Literal["pending", "claimed", "decided", "disputed"]
OrderName = Literal["confidence", "occurrences", "newest"]
ItemId = Annotated[int, Path(ge=1, le=2**63 - 1, description="Review item id.", examples=[42])]


# --- schemas ------------------------------------------------------------------------------


class PathStep(BaseModel):
    """One level of an ICCS path."""

    code: str = Field(description="ICCS code at this level.", examples=["02"])
    label: str = Field(description="Official ICCS title.", examples=["Acts causing harm"])


class ReviewSuggestion(BaseModel):
    """A code the model suggested for the item."""

    code: str = Field(description="Suggested ICCS code.", examples=["0201"])
    label: str = Field(description="Its ICCS title.", examples=["Assaults and threats"])
    level: int = Field(description="1 section, 2 division, 3 group, 4 class.", examples=[2])
    path: list[PathStep] = Field(description="From the section down to the code, with titles.")
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
    order: OrderName = Field(
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
    from_code: str | None = Field(description="Code before (the model's suggestion).")
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
    item_ids: list[int] | None = Field(None, max_length=10_000, description="Item ids.")
    batch: str | None = Field(None, description="A batch.")
    share: float = Field(1.0, gt=0, le=1, description="Share of the batch's open items.")


class DoubleReviewResponse(BaseModel):
    """How many items now need two reviews."""

    flagged: int


class MemoryRetireResponse(BaseModel):
    """The retired decision-memory entry."""

    text_key: str
    code: str
    retired_by: str | None
    retired_at: datetime | None


# --- conversion ---------------------------------------------------------------------------


def _path(codes: list[Any] | None, code: str) -> list[PathStep]:
    tax = load_taxonomy()
    steps = [str(c) for c in codes] if codes else []
    if not steps and code in tax:
        steps = tax.path(code)
    return [PathStep(code=c, label=tax.title(c) if c in tax else "") for c in steps]


def _suggestion(raw: dict[str, Any]) -> ReviewSuggestion:
    tax = load_taxonomy()
    code = str(raw.get("code", ""))
    known = code in tax
    return ReviewSuggestion(
        code=code,
        label=str(raw.get("label") or (tax.title(code) if known else "")),
        level=int(raw.get("level") or (tax.level(code) if known else 0)),
        path=_path(raw.get("path"), code),
        confidence=raw.get("confidence"),
    )


def item_response(
    item: ReviewItem,
    decisions: list[ReviewDecision],
    viewer: Principal | None = None,
    reviews_done: int | None = None,
) -> ReviewItemResponse:
    """Schema of an item; listings pass no decisions but their count."""
    tax = load_taxonomy()
    finals = [d for d in decisions if d.action in FINAL_ACTIONS]
    done = len(finals) if reviews_done is None else reviews_done
    blind = item.reviews_required > 1 and item.status != DECIDED
    if blind and not (viewer is not None and viewer.can(MANAGE)):
        shown = [d for d in decisions if viewer is not None and d.reviewer == viewer.name]
    else:
        shown = decisions
    return ReviewItemResponse(
        id=item.id,
        text=item.text,
        record_id=item.record_id,
        origin=item.origin,
        batch=item.batch,
        occurrences=item.occurrences,
        status=item.status,
        suggestions=[_suggestion(s) for s in item.suggestions or []],
        top_code=item.top_code,
        top_confidence=item.top_confidence,
        section=item.section,
        model_version=item.model_version,
        claimed_by=item.claimed_by,
        claim_expires_at=aware(item.claim_expires_at),
        decision=item.decision,
        decided_code=item.decided_code,
        decided_label=(
            tax.title(item.decided_code) if item.decided_code and item.decided_code in tax else None
        ),
        decided_by=item.decided_by,
        decided_at=aware(item.decided_at),
        note=item.note,
        created_at=aware(item.created_at) or item.created_at,
        reviews_required=item.reviews_required,
        reviews_done=done,
        decisions=[
            DecisionOut(
                reviewer=d.reviewer,
                action=d.action,
                code=d.code,
                at=aware(d.at) or d.at,
                note=d.note,
            )
            for d in shown
        ],
    )


def history_response(
    item: ReviewItem, entries: list[AuditEntry], viewer: Principal | None
) -> HistoryResponse:
    """Schema of a history; codes of other reviewers are masked while double review is open."""
    blind = item.reviews_required > 1 and item.status != DECIDED
    hide = blind and not (viewer is not None and viewer.can(MANAGE))
    out = []
    for e in entries:
        masked = (
            hide
            and e.actor not in ("system", viewer.name if viewer else "")
            and (e.action in FINAL_ACTIONS)
        )
        out.append(
            AuditEntryResponse(
                at=aware(e.at) or e.at,
                actor=e.actor,
                action=e.action,
                from_status=e.from_status,
                to_status=e.to_status,
                from_code=e.from_code,
                to_code=None if masked else e.to_code,
                model_version=e.model_version,
                note=None if masked else e.note,
            )
        )
    return HistoryResponse(item_id=item.id, entries=out)


def stats_response(stats: Stats, reviewer: str | None = None) -> StatsResponse:
    """Schema of the progress summary."""
    a = stats.inter_reviewer
    return StatsResponse(
        reviewer=reviewer,
        reviewed_today=stats.reviewed_today,
        reviewed_today_by_you=stats.reviewed_today_by_you,
        remaining=stats.remaining,
        remaining_occurrences=stats.remaining_occurrences,
        decided=stats.decided,
        by_status=stats.by_status,
        pending_by_section=stats.pending_by_section,
        model_agreement=stats.model_agreement,
        model_agreement_n=stats.model_agreement_n,
        inter_reviewer=AgreementResponse(
            pairs=a.pairs, agreeing=a.agreeing, rate=a.rate, kappa=a.kappa
        ),
    )


def _full(store: ReviewStore, item: ReviewItem, viewer: Principal) -> ReviewItemResponse:
    return item_response(item, store.decisions(item.id), viewer)


# --- routes -------------------------------------------------------------------------------


@router.get("", summary="List review items", responses=_errors(422))
def list_reviews(
    store: StoreDep,
    principal: Reviewer,
    status: Annotated[StatusName | None, Query(description="Item status.")] = None,
    section: Annotated[
        str | None, Query(pattern=r"^\d{2}$", description="Suggested ICCS section.")
    ] = None,
    min_confidence: Annotated[float | None, Query(ge=0, le=1)] = None,
    max_confidence: Annotated[float | None, Query(ge=0, le=1)] = None,
    batch: Annotated[str | None, Query(max_length=200)] = None,
    origin: Annotated[str | None, Query(max_length=20)] = None,
    created_from: Annotated[date | None, Query(description="Queued on or after (UTC).")] = None,
    created_to: Annotated[date | None, Query(description="Queued on or before (UTC).")] = None,
    order: Annotated[OrderName, Query(description="confidence or occurrences.")] = "confidence",
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=2**63 - 1)] = 0,
) -> ReviewListResponse:
    """Items filtered and ordered: lowest confidence first, or the most frequent texts first."""
    flt = ItemFilter(
        status=status,
        section=section,
        min_confidence=min_confidence,
        max_confidence=max_confidence,
        batch=batch,
        origin=origin,
        created_from=created_from,
        created_to=created_to,
    )
    page = store.list_items(flt, order=order, limit=limit, offset=offset)
    counts = store.final_counts([i.id for i in page.items])
    return ReviewListResponse(
        items=[item_response(i, [], principal, counts.get(i.id, 0)) for i in page.items],
        total=page.total,
        limit=page.limit,
        offset=page.offset,
    )


@router.get("/stats", summary="Progress summary", responses=_errors())
def review_stats(store: StoreDep, principal: Reviewer) -> StatsResponse:
    """Reviewed today, remaining, agreement with the model and between reviewers."""
    return stats_response(store.stats(reviewer=principal.name), principal.name)


@router.post("/claim-next", summary="Claim the next item", responses=_errors(422))
def claim_next(
    store: StoreDep, principal: Reviewer, body: ClaimNextRequest | None = None
) -> ClaimNextResponse:
    """Lease the next item this reviewer may work on, atomically; null when none is left."""
    body = body or ClaimNextRequest()
    flt = ItemFilter(
        section=body.section,
        batch=body.batch,
        origin=body.origin,
        min_confidence=body.min_confidence,
        max_confidence=body.max_confidence,
    )
    item = store.claim_next(principal.name, flt, order=body.order)
    return ClaimNextResponse(item=_full(store, item, principal) if item else None)


@router.post(
    "/double-review", summary="Flag items for double review (admin)", responses=_errors(422)
)
def double_review(
    store: StoreDep, principal: Admin, body: DoubleReviewRequest
) -> DoubleReviewResponse:
    """Ask for two independent decisions on items, to measure inter-reviewer agreement."""
    n = store.flag_double_review(principal.name, body.item_ids, body.batch, body.share)
    return DoubleReviewResponse(flagged=n)


@router.get("/{item_id}", summary="One review item", responses=_errors(404, 422))
def get_review(item_id: ItemId, store: StoreDep, principal: Reviewer) -> ReviewItemResponse:
    """The item with its suggestions (titles and paths) and decisions."""
    return _full(store, store.get(item_id), principal)


@router.post(
    "/{item_id}/claim", summary="Claim an item", responses=_errors(404, 422, conflict=True)
)
def claim_review(item_id: ItemId, store: StoreDep, principal: Reviewer) -> ReviewItemResponse:
    """Lease the item for the configured time; 409 when someone else holds it."""
    return _full(store, store.claim(item_id, principal.name), principal)


@router.post(
    "/{item_id}/release",
    summary="Give a claimed item back",
    responses=_errors(404, 422, conflict=True),
)
def release_review(item_id: ItemId, store: StoreDep, principal: Reviewer) -> ReviewItemResponse:
    """Return the item to the queue without deciding it."""
    return _full(store, store.release(item_id, principal.name), principal)


@router.post(
    "/{item_id}/decision", summary="Decide an item", responses=_errors(404, 422, conflict=True)
)
def decide_review(
    item_id: ItemId, body: DecisionRequest, store: StoreDep, principal: Reviewer
) -> ReviewItemResponse:
    """Accept a suggestion, correct to any ICCS code, reject as not an offence, or skip."""
    item = store.decide(item_id, principal.name, body.action, body.code, body.note)
    return _full(store, item, principal)


@router.get("/{item_id}/history", summary="Audit trail of an item", responses=_errors(404, 422))
def review_history(item_id: ItemId, store: StoreDep, principal: Reviewer) -> HistoryResponse:
    """Every state change: who, when, from what, to what, and the suggesting model."""
    item = store.get(item_id)
    return history_response(item, store.history(item_id), principal)


@router.post(
    "/{item_id}/memory/retire",
    summary="Retire a decision-memory entry (admin)",
    responses=_errors(404, 422),
)
def retire_memory(item_id: ItemId, store: StoreDep, principal: Admin) -> MemoryRetireResponse:
    """Stop coding later identical texts with this item's decision."""
    entry = store.memory_retire(principal.name, item_id=item_id)
    return MemoryRetireResponse(
        text_key=entry.text_key,
        code=entry.code,
        retired_by=entry.retired_by,
        retired_at=aware(entry.retired_at),
    )

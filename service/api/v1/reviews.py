"""Review queue over HTTP: list, claim, decide, history, progress, double review, memory.

A thin layer: requests become calls on :class:`service.review.store.ReviewStore` and its
results become the review schemas of :mod:`service.api.v1.schemas`. The reviewer's identity
is the name of their API key; who may see which decision is the store's rule.
"""

from __future__ import annotations

import logging
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query

from service.api.deps import Admin, Reviewer, ServicesDep, StoreDep
from service.api.v1.responses import error_responses
from service.api.v1.schemas import (
    AgreementResponse,
    AuditEntryResponse,
    CategoryRef,
    ClaimNextRequest,
    ClaimNextResponse,
    DecisionOut,
    DecisionRequest,
    DoubleReviewRequest,
    DoubleReviewResponse,
    ErrorResponse,
    HistoryResponse,
    MemoryEntryResponse,
    MemoryListResponse,
    MemoryRetireResponse,
    ReviewItemResponse,
    ReviewListResponse,
    ReviewOrderName,
    ReviewStatusName,
    ReviewSuggestion,
    StatsResponse,
)
from service.api.v1.schemas.reviews import DecidedNeighbourOut, DecisionResponse, RescoringOut
from service.auth import MANAGE, Principal
from service.db import AuditEntry, ReviewDecision, ReviewItem
from service.errors import NotFound
from service.review.rescoring import embeddings_for, rescore_after_decision
from service.review.store import (
    DECIDED,
    FINAL_ACTIONS,
    ItemFilter,
    ReviewStore,
    Stats,
    Viewer,
    aware,
    is_blind,
    visible_decisions,
    visible_history,
)
from service.taxonomy import load_taxonomy

log = logging.getLogger(__name__)

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


# Decided neighbours less similar than this are not shown: unrelated texts (0.03 and -0.14
# with the quick model, against 0.97 for a near-duplicate) drove nothing in the suggestion.
NEIGHBOUR_MIN_SIMILARITY = 0.3

ItemId = Annotated[int, Path(ge=1, le=2**63 - 1, description="Review item id.", examples=[42])]


# --- conversion ---------------------------------------------------------------------------


def viewer_of(principal: Principal | None) -> Viewer | None:
    """The store's view of who is looking: admins see every decision at any time."""
    if principal is None:
        return None
    return Viewer(principal.name, sees_all=principal.can(MANAGE))


def _path(codes: list[Any] | None, code: str) -> list[CategoryRef]:
    tax = load_taxonomy()
    steps = [str(c) for c in codes] if codes else []
    if not steps and code in tax:
        steps = tax.path(code)
    return [CategoryRef(code=c, label=tax.title(c) if c in tax else "") for c in steps]


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
    shown = visible_decisions(item, decisions, viewer_of(viewer))
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
        min_precision=item.min_precision,
        table_precision=item.table_precision,
        non_offence_probability=item.non_offence_probability,
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
        priority=item.priority,
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
    out = [
        AuditEntryResponse(
            at=e.at,
            actor=e.actor,
            action=e.action,
            from_status=e.from_status,
            to_status=e.to_status,
            from_code=e.from_code,
            to_code=e.to_code,
            model_version=e.model_version,
            note=e.note,
        )
        for e in visible_history(item, entries, viewer_of(viewer))
    ]
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
        auto_coded=stats.auto_coded,
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


def neighbours_of(
    services: Any, store: ReviewStore, item: ReviewItem, viewer: Principal
) -> list[DecidedNeighbourOut]:
    """The decided items nearest ``item``'s text, as ``viewer`` may see them (only those at
    :data:`NEIGHBOUR_MIN_SIMILARITY` or above).

    Decided examples come from decision memory, which only settled items write; an example
    whose item is not settled, or that ``viewer`` may not see yet (blind double review), is
    left out all the same, so a rule change upstream cannot leak a code.
    """
    coder = services.coder
    if coder is None or not item.text:
        return []
    try:
        found = coder.decided_neighbours([item.text], k=3)[0]
    except Exception:  # noqa: BLE001 - the item must show even when the model cannot answer
        log.warning("decided neighbours of review item %s failed", item.id, exc_info=True)
        return []
    shown = []
    who = viewer_of(viewer)
    for n in found:
        if n.item_id == item.id or n.similarity < NEIGHBOUR_MIN_SIMILARITY:
            continue
        try:
            other = store.get(n.item_id)
        except NotFound:
            continue
        if other.status != DECIDED or is_blind(other, who):
            continue
        shown.append(
            DecidedNeighbourOut(
                item_id=n.item_id, text=n.text, code=n.code, similarity=n.similarity
            )
        )
    return shown


def rescore_list(services: Any, store: ReviewStore, item: ReviewItem) -> RescoringOut | None:
    """Re-score the similar pending items of a settled item's list (see
    :mod:`service.review.rescoring`); a failure is logged and counted, never raised: the
    decision is recorded already."""
    coder = services.coder
    if coder is None or item.status != DECIDED:
        return None
    try:
        out = rescore_after_decision(store, coder, item.id, embed=embeddings_for(coder))
    except Exception:  # noqa: BLE001 - see the docstring
        log.warning(
            "re-scoring after the decision on review item %s failed", item.id, exc_info=True
        )
        services.metrics.rescoring.labels("failed").inc()
        return RescoringOut(considered=0, auto_coded=[], moved=[], failed=True)
    services.metrics.rescoring.labels("ok").inc()
    log.info(
        "re-scored %d items after review item %s: %d auto-coded, %d moved, %.3fs",
        out.considered,
        item.id,
        len(out.auto_coded),
        len(out.moved),
        out.seconds,
    )
    return RescoringOut(considered=out.considered, auto_coded=out.auto_coded, moved=out.moved)


# --- routes -------------------------------------------------------------------------------


@router.get("", summary="List review items", responses=_errors(422))
def list_reviews(
    store: StoreDep,
    principal: Reviewer,
    status: Annotated[ReviewStatusName | None, Query(description="Item status.")] = None,
    section: Annotated[
        str | None, Query(pattern=r"^\d{2}$", description="Suggested ICCS section.")
    ] = None,
    min_confidence: Annotated[float | None, Query(ge=0, le=1)] = None,
    max_confidence: Annotated[float | None, Query(ge=0, le=1)] = None,
    batch: Annotated[str | None, Query(max_length=200)] = None,
    origin: Annotated[str | None, Query(max_length=20)] = None,
    created_from: Annotated[date | None, Query(description="Queued on or after (UTC).")] = None,
    created_to: Annotated[date | None, Query(description="Queued on or before (UTC).")] = None,
    order: Annotated[
        ReviewOrderName,
        Query(description="confidence, occurrences, newest or value (expected value first)."),
    ] = "confidence",
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=2**63 - 1)] = 0,
) -> ReviewListResponse:
    """Items filtered and ordered: lowest confidence first, the most frequent texts first, the
    newest first, or the highest expected value of a decision first."""
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


@router.get("/memory", summary="Decision-memory entries (admin)", responses=_errors(422))
def list_memory(
    store: StoreDep,
    principal: Admin,
    include_retired: Annotated[bool, Query(description="Include retired entries.")] = False,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> MemoryListResponse:
    """Who decided what and when, how many reviewers agree, and whether it applies yet."""
    entries = store.memory_entries(include_retired=include_retired, limit=limit)
    agreement = store.memory_agreement([e.text_key for e in entries])
    return MemoryListResponse(
        entries=[
            MemoryEntryResponse(
                text_key=e.text_key,
                code=e.code,
                item_id=e.item_id,
                decided_by=e.decided_by,
                decided_at=aware(e.decided_at) or e.decided_at,
                agreeing=agreement.get(e.text_key, (0, False))[0],
                active=agreement.get(e.text_key, (0, False))[1],
                retired_by=e.retired_by,
                retired_at=aware(e.retired_at),
            )
            for e in entries
        ]
    )


@router.get("/{item_id}", summary="One review item", responses=_errors(404, 422))
def get_review(
    item_id: ItemId, store: StoreDep, principal: Reviewer, services: ServicesDep
) -> ReviewItemResponse:
    """The item with its suggestions (titles and paths), decisions and decided neighbours."""
    item = store.get(item_id)
    out = _full(store, item, principal)
    out.neighbours = neighbours_of(services, store, item, principal)
    return out


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
    item_id: ItemId,
    body: DecisionRequest,
    store: StoreDep,
    principal: Reviewer,
    services: ServicesDep,
) -> DecisionResponse:
    """Accept a suggestion, correct to any ICCS code, reject as not an offence, or skip.

    A decision that settles the item re-scores the similar pending items of its list (its
    batch, else its origin) at once: one the model now codes on its own at the service's
    precision leaves the queue as auto_coded (its audit names the decisions relied on); the
    others get the new suggestions. ``rescoring`` says what moved.
    """
    item = store.decide(
        item_id, principal.name, body.action, body.code, body.note, by_admin=principal.can(MANAGE)
    )
    rescoring = rescore_list(services, store, item)
    out = _full(store, item, principal)
    return DecisionResponse(**out.model_dump(), rescoring=rescoring)


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

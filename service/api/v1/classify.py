"""POST /v1/classify and /v1/classify/batch: records in, codes and decisions out."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import APIRouter, Request
from pydantic import ValidationError

from service.api.deps import CoderDep, ServicesDep, Submitter
from service.api.errors import iccs_error_body, validation_context
from service.api.v1.responses import error_responses
from service.api.v1.schemas import (
    AssignedOut,
    BatchItemError,
    BatchRequest,
    BatchResponse,
    ClassifyRequest,
    ClassifyResponse,
    ErrorResponse,
    LanguageOut,
    SuggestionOut,
    check_storable,
)
from service.coding import CodedRecord, Coder
from service.config import Settings
from service.errors import BatchTooLarge, ICCSError, TextTooLong
from service.language import detect
from service.review.queue import check_review_quota

router = APIRouter(tags=["classify"])


def check_record(
    item: ClassifyRequest, settings: Settings, coder: Coder
) -> tuple[float | None, float | None]:
    """Apply the operator's limits to one record: the min_precision to use (None: default)
    and its table_precision (None: coded on its own)."""
    if len(item.text) > settings.max_text_length:
        raise TextTooLong(
            f"The text is {len(item.text)} characters long; the limit is "
            f"{settings.max_text_length}.",
            length=len(item.text),
            limit=settings.max_text_length,
        )
    precision = None
    if item.min_precision is not None:
        precision = settings.check_min_precision(item.min_precision)
    table = None
    if item.table_precision is not None:
        table = settings.check_min_precision(item.table_precision, field="table_precision")
        coder.predictor.thresholds.table_at(table)  # refuses a model without table thresholds
    return precision, table


def to_response(rec: CodedRecord, request_id: str) -> ClassifyResponse:
    """API answer for one coded record."""
    res = rec.result
    assigned = None
    if res.assigned is not None:
        a = res.assigned
        assigned = AssignedOut(code=a.code, label=a.label, level=a.level, confidence=a.confidence)
    return ClassifyResponse(
        id=rec.record_id,
        request_id=request_id,
        status=res.status,
        reason=res.reason,
        assigned=assigned,
        suggestions=[
            SuggestionOut(
                code=s.code, label=s.label, level=s.level, path=s.path, confidence=s.confidence
            )
            for s in res.suggestions
        ],
        review_id=rec.review_id,
        source=rec.source,
        model_version=res.model_version,
        taxonomy_version=res.taxonomy_version,
        language=LanguageOut(**(rec.language or detect("")).as_dict()),
        relied_on=list(res.relied_on),
        not_an_offence_probability=res.non_offence_probability,
    )


def _count(services: Any, records: Sequence[CodedRecord]) -> None:
    for rec in records:
        services.metrics.classifications.labels(rec.result.status, rec.source).inc()


@router.post(
    "/classify",
    response_model=ClassifyResponse,
    summary="Code one offence record",
    responses=error_responses(401, 403, 413, 422, 429, 503),
)
def classify(
    body: ClassifyRequest,
    request: Request,
    principal: Submitter,
    services: ServicesDep,
    coder: CoderDep,
) -> ClassifyResponse:
    """Suggest ICCS codes for one record, and auto-code it, queue it for review or reject it.

    A record that goes to review is stored durably before this answer is sent.
    """
    precision, table = check_record(body, services.settings, coder)
    check_review_quota(
        services.sessions, principal.name, services.settings.max_open_review_items_per_key
    )
    rec = coder.code(
        [body.text],
        [body.id],
        top_k=body.top_k,
        min_precision=precision,
        languages=[body.language],
        created_by=principal.name,
        table_precision=table,
    )[0]
    _count(services, [rec])
    top = rec.result.assigned or (rec.result.suggestions[0] if rec.result.suggestions else None)
    request.state.log_fields.update(
        model_version=rec.result.model_version,
        result_status=rec.result.status,
        reason=rec.result.reason,
        code=top.code if top else None,
        assigned=rec.result.assigned is not None,
        confidence=top.confidence if top else None,
        source=rec.source,
        review_id=rec.review_id,
        text_fp=services.fingerprint(body.text) if services.fingerprint else None,
        text_len=len(body.text),
        language=rec.language.code if rec.language else None,
        relied_on=rec.result.relied_on or None,
    )
    return to_response(rec, request.state.request_id)


@router.post(
    "/classify/batch",
    response_model=BatchResponse,
    summary="Code up to max_batch_size records in one call",
    responses=error_responses(401, 403, 413, 422, 429, 503),
)
def classify_batch(
    body: BatchRequest,
    request: Request,
    principal: Submitter,
    services: ServicesDep,
    coder: CoderDep,
) -> BatchResponse:
    """Code many records in one inference pass; a bad item gets an error entry, not a 4xx.

    Results come back in input order. Items that go to review are stored durably before the
    answer is sent.
    """
    settings = services.settings
    if len(body.items) > settings.max_batch_size:
        raise BatchTooLarge(
            f"The batch has {len(body.items)} items; the limit is {settings.max_batch_size}.",
            size=len(body.items),
            limit=settings.max_batch_size,
        )
    # The rate limit counts records: the call itself paid for one when its key was checked.
    services.limiter.check(principal.name, cost=len(body.items) - 1)
    check_review_quota(services.sessions, principal.name, settings.max_open_review_items_per_key)
    results: list[ClassifyResponse | BatchItemError | None] = [None] * len(body.items)
    # Items asking for the same top_k and precisions share one inference pass (normally all).
    groups: dict[tuple[int, float | None, float | None], list[tuple[int, ClassifyRequest]]] = {}
    for index, raw in enumerate(body.items):
        try:
            item = ClassifyRequest.model_validate(raw)
            precision, table = check_record(item, settings, coder)
        except ValidationError as exc:
            results[index] = _item_error(
                index,
                raw,
                "validation_error",
                "The item does not match the schema.",
                422,
                validation_context(exc.errors()),
            )
            continue
        except ICCSError as exc:
            results[index] = BatchItemError(
                index=index, id=_raw_id(raw), error=ErrorResponse(**iccs_error_body(exc))
            )
            continue
        groups.setdefault((item.top_k, precision, table), []).append((index, item))
    request_id: str = request.state.request_id
    coded = 0
    for (top_k, precision, table), members in groups.items():
        records = _code_group(
            coder, [it for _, it in members], top_k, precision, table, principal.name
        )
        _count(services, records)
        coded += len(records)
        for (index, _), rec in zip(members, records, strict=True):
            results[index] = to_response(rec, request_id)
    statuses = [r.status for r in results if isinstance(r, ClassifyResponse)]
    request.state.log_fields.update(
        model_version=coder.predictor.version,
        items=len(body.items),
        item_errors=len(body.items) - coded,
        auto=statuses.count("auto"),
        review=statuses.count("review"),
        rejected=statuses.count("rejected"),
    )
    return BatchResponse(request_id=request_id, results=[r for r in results if r is not None])


def _code_group(
    coder: Coder,
    items: list[ClassifyRequest],
    top_k: int,
    precision: float | None,
    table: float | None,
    created_by: str,
) -> list[CodedRecord]:
    return coder.code(
        [it.text for it in items],
        [it.id for it in items],
        top_k=top_k,
        min_precision=precision,
        languages=[it.language for it in items],
        created_by=created_by,
        table_precision=table,
    )


def _raw_id(raw: Any) -> str | None:
    # Echoed only when it is a valid id: an unpaired surrogate could not even be sent back.
    value = raw.get("id") if isinstance(raw, dict) else None
    if isinstance(value, str) and len(value) <= 200:
        try:
            return check_storable(value)
        except ValueError:
            return None
    return None


def _item_error(
    index: int, raw: Any, code: str, detail: str, status: int, context: dict[str, Any]
) -> BatchItemError:
    return BatchItemError(
        index=index,
        id=_raw_id(raw),
        error=ErrorResponse(error=code, detail=detail, status=status, context=context),
    )

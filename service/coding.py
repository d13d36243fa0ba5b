"""Coding records end to end: decision memory, the model, and the review queue.

The API, the bulk engine and the job runner all code records through :class:`Coder`, so the
same texts get the same answer whichever door they came in by.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from service.labels import NOT_AN_OFFENCE
from service.language import Language, resolve
from service.models.decided import DecidedExamples, DecidedNeighbour, DecidedRow
from service.models.policy import AUTO, REJECTED, REVIEW
from service.models.predictor import Classification, Predictor, Suggestion
from service.normalize import dedupe_key
from service.taxonomy import load_taxonomy

SOURCE_MODEL = "model"
SOURCE_MEMORY = "review_memory"
# An incremental pull of decided examples starts this long before the newest one seen: another
# instance may commit a decision stamped a little earlier (its clock, its transaction).
DECIDED_OVERLAP = timedelta(seconds=30)


@dataclass(frozen=True)
class ReviewRequest:
    """What the review queue stores for one record routed to review."""

    text: str
    text_key: str
    suggestions: list[dict[str, object]]
    top_code: str | None
    top_confidence: float | None
    model_version: str
    record_id: str | None = None
    origin: str = "api"
    batch: str | None = None
    occurrences: int = 1
    created_by: str | None = None
    # The precision the record was coded at (a request's min_precision, else the service's):
    # re-scoring after a decision auto-codes the item only at this precision or stricter.
    min_precision: float | None = None
    # The precision of the finished table when the record is an entry of a list coded as a
    # correspondence table (None: every code must reach min_precision); re-scoring keeps it.
    table_precision: float | None = None
    # The model's P(not an offence) for the text (None: not scored, or no such class).
    non_offence_probability: float | None = None


class ReviewQueue(Protocol):
    """The part of the review store that coding needs (``service.review.store.ReviewStore``)."""

    def enqueue(self, items: Sequence[ReviewRequest], source: str | None = None) -> list[int]:
        """Persist items durably (committed before returning); their ids in order.

        ``source`` names the run they come from; a repeat of that run's call changes nothing.
        """
        ...

    def memory_lookup_items(self, text_keys: Sequence[str]) -> dict[str, tuple[str, int | None]]:
        """Active decision-memory (code, review item id) by text key."""
        ...

    def decided_examples(self, since: datetime | None = None) -> list[DecidedRow]:
        """Decision-memory entries decided at or after ``since`` (retired ones flagged), or
        all active ones with a text."""
        ...


@dataclass
class CodedRecord:
    """A classification plus where it came from and its review ticket."""

    result: Classification
    source: str = SOURCE_MODEL
    review_id: int | None = None
    record_id: str | None = None
    language: Language | None = None


class Coder:
    """Applies decision memory first, then the model; queues what goes to review.

    With a review queue, reviewers' decisions join the model's nearest examples at once (see
    :mod:`service.models.decided`): before coding, the coder pulls the entries decided since
    its last pull, and every ``decided_refresh_s`` seconds it reloads them all, so that retired
    entries leave.
    """

    def __init__(
        self,
        predictor: Predictor,
        queue: ReviewQueue | None = None,
        decided_refresh_s: float = 60.0,
    ) -> None:
        self.predictor = predictor
        self.queue = queue
        self.taxonomy = load_taxonomy()
        # A stand-in for the model without decided examples (a wrapper, a test double) codes
        # as before: the keyword is passed to classify only when there is an index.
        make_index = getattr(predictor, "decided_index", None)
        self.decided: DecidedExamples | None = (
            make_index() if queue is not None and make_index is not None else None
        )
        self.decided_refresh_s = decided_refresh_s
        self._sync_lock = threading.Lock()
        self._watermark: datetime | None = None
        self._refreshed_at: float | None = None

    def code(
        self,
        texts: Sequence[str],
        record_ids: Sequence[str | None] | None = None,
        top_k: int = 5,
        min_precision: float | None = None,
        origin: str = "api",
        batch: str | None = None,
        occurrences: Sequence[int] | None = None,
        queue_review: bool = True,
        languages: Sequence[str | None] | None = None,
        created_by: str | None = None,
        table_precision: float | None = None,
    ) -> list[CodedRecord]:
        """Code ``texts`` in one inference pass; review items are committed before return.

        ``languages`` are the clients' language tags (None: detect the text's language);
        ``created_by`` the API key the review items are counted against;
        ``table_precision``: the texts are a national list coded as a correspondence table
        (:meth:`service.models.predictor.Predictor.classify`).
        """
        ids = list(record_ids) if record_ids is not None else [None] * len(texts)
        declared = list(languages) if languages is not None else [None] * len(texts)
        keys = [dedupe_key(t) for t in texts]
        self.sync_decided(wait=False)
        memory = self.queue.memory_lookup_items(sorted(set(keys))) if self.queue else {}
        model_idx = [i for i, k in enumerate(keys) if k not in memory]
        model_results = self.predictor.classify(
            [texts[i] for i in model_idx],
            top_k=top_k,
            min_precision=min_precision,
            **self._model_kw(table_precision),
        )
        by_model = dict(zip(model_idx, model_results, strict=True))
        out: list[CodedRecord] = [
            CodedRecord(self._from_memory(*memory[k]), SOURCE_MEMORY, record_id=ids[i])
            if k in memory
            else CodedRecord(by_model[i], record_id=ids[i])
            for i, k in enumerate(keys)
        ]
        for rec, text, tag in zip(out, texts, declared, strict=True):
            rec.language = resolve(text, tag)
        if self.queue is not None and queue_review:
            precision = min_precision or self.predictor.default_precision
            self._enqueue(
                texts, keys, out, origin, batch, occurrences, created_by, precision, table_precision
            )
        return out

    def rescore(
        self,
        texts: list[str],
        min_precision: float | None = None,
        table_precision: float | None = None,
    ) -> list[Classification]:
        """The model's current answer for ``texts`` with the decided examples as they are now
        (no decision memory, nothing queued), at ``min_precision`` or the service's precision,
        whichever is stricter: what was queued at a laxer one is not auto-coded at it now.
        Entries of a list coded as a table (``table_precision``) are re-scored as one."""
        self.sync_decided()
        if min_precision is not None:
            min_precision = max(min_precision, self.predictor.default_precision)
        return self.predictor.classify(
            texts,
            top_k=5,
            min_precision=min_precision,
            **self._model_kw(table_precision),
        )

    def _decided_kw(self) -> dict[str, DecidedExamples]:
        """``decided=`` for the model's classify, only when there is an index."""
        return {} if self.decided is None else {"decided": self.decided}

    def _model_kw(self, table_precision: float | None) -> dict[str, Any]:
        """``decided=`` and ``table_precision=`` for the model's classify, each only when
        needed (a stand-in for the model need not know them)."""
        kw: dict[str, Any] = dict(self._decided_kw())
        if table_precision is not None:
            kw["table_precision"] = table_precision
        return kw

    def decided_neighbours(self, texts: list[str], k: int = 3) -> list[list[DecidedNeighbour]]:
        """The ``k`` decided examples nearest each text (an example of the same text is left
        out): the decisions that drive the text's suggestion through the nearest examples."""
        self.sync_decided()
        if self.decided is None:
            return [[] for _ in texts]
        return self.predictor.decided_neighbours(texts, self.decided, k)

    def sync_decided(self, full: bool = False, wait: bool = True) -> None:
        """Bring the decided examples in step with the review store.

        Pulls what was decided since the last pull (from a little before it, see
        :data:`DECIDED_OVERLAP`); every ``decided_refresh_s`` seconds, or with ``full``,
        reloads every active entry so that retired ones leave. Each text is encoded once.
        With ``wait=False`` (a request) nothing waits for a sync another thread is running
        (the first load at startup encodes every decided text): the request codes with the
        examples loaded so far.
        """
        if self.queue is None or self.decided is None:
            return
        if not self._sync_lock.acquire(blocking=wait):
            return
        try:
            now = time.monotonic()
            due = self._refreshed_at is None or now - self._refreshed_at >= self.decided_refresh_s
            if full or due or self._watermark is None:
                rows = self.queue.decided_examples(None)
                self._apply_decided(rows, full=True)
                self._refreshed_at = now
            else:
                rows = self.queue.decided_examples(self._watermark - DECIDED_OVERLAP)
                self._apply_decided(rows, full=False)
            if rows:
                newest = max(r.decided_at for r in rows)
                self._watermark = max(newest, self._watermark or newest)
        finally:
            self._sync_lock.release()

    def _apply_decided(self, rows: list[DecidedRow], full: bool) -> None:
        index = self.decided
        assert index is not None
        latest: dict[str, DecidedRow] = {}
        for r in rows:  # oldest first: the newest row of a text wins
            latest[r.text_key] = r
        if full:
            for key in index.keys() - latest.keys():
                index.remove(key)
        encode: list[DecidedRow] = []
        for key, r in latest.items():
            if r.retired or not r.text:
                index.remove(key)
            elif not index.relabel(key, r.text, r.code, r.item_id):
                encode.append(r)
        if encode:
            embeddings = self.predictor.embed([r.text for r in encode])
            for r, emb in zip(encode, embeddings, strict=True):
                index.add(r.text_key, r.text, r.code, r.item_id, emb)

    def _enqueue(
        self,
        texts: Sequence[str],
        keys: list[str],
        out: list[CodedRecord],
        origin: str,
        batch: str | None,
        occurrences: Sequence[int] | None,
        created_by: str | None = None,
        min_precision: float | None = None,
        table_precision: float | None = None,
    ) -> None:
        pending = [i for i, rec in enumerate(out) if rec.result.status == REVIEW]
        if not pending or self.queue is None:
            return
        requests = []
        for i in pending:
            res = out[i].result
            top = res.suggestions[0] if res.suggestions else None
            requests.append(
                ReviewRequest(
                    text=texts[i],
                    text_key=keys[i],
                    suggestions=[suggestion_dict(s) for s in res.suggestions],
                    top_code=top.code if top else None,
                    top_confidence=top.confidence if top else None,
                    model_version=res.model_version,
                    record_id=out[i].record_id,
                    origin=origin,
                    batch=batch,
                    occurrences=occurrences[i] if occurrences is not None else 1,
                    created_by=created_by,
                    min_precision=min_precision,
                    table_precision=table_precision,
                    non_offence_probability=res.non_offence_probability,
                )
            )
        for i, review_id in zip(pending, self.queue.enqueue(requests), strict=True):
            out[i].review_id = review_id

    def _from_memory(self, code: str, item_id: int | None = None) -> Classification:
        relied_on = [item_id] if item_id is not None else []
        if code == NOT_AN_OFFENCE:
            return Classification(
                [], None, REJECTED, NOT_AN_OFFENCE, self.predictor.version, relied_on=relied_on
            )
        cat = self.taxonomy.get(code)
        s = Suggestion(cat.code, cat.title, cat.level, self.taxonomy.path(code), 1.0)
        return Classification([s], s, AUTO, None, self.predictor.version, relied_on=relied_on)


def suggestion_dict(s: Suggestion) -> dict[str, object]:
    """JSON-ready suggestion."""
    return {
        "code": s.code,
        "label": s.label,
        "level": s.level,
        "path": s.path,
        "confidence": s.confidence,
    }

"""After a reviewer's decision: re-score the similar pending items of its list; the queue's value.

A "list" is what an office codes as one whole: the item's ``batch`` (a bulk file, a job, a
batch call), or for items queued without one, everything of the same ``origin``.

:func:`rescore_after_decision` runs once a decision settles an item (status ``decided``). It
asks the model again (:meth:`service.coding.Coder.rescore`, which now counts the decided
examples) about the open, unclaimed, single-review items of the same list, the
:data:`MAX_RESCORED` most similar to the decided text. An item the policy now codes on its
own (status ``auto``, at the service's precision) leaves the queue as ``auto_coded``; the
audit row names the decisions the answer relied on and the model version. That is not a human
decision: no decision memory, no vote, no training row. Any other item gets the new
suggestions (an audit row ``rescored`` when its top code changes).

:func:`refresh_values` keeps ``review_items.priority``, the queue order ``value``: the expected
value of a decision, uncertainty (1 - top confidence) times the records it would settle (the
item's own occurrences plus those of the pending items of its list similar to it).

Nothing here knows HTTP: the API calls these functions with the store and the coder.
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

import numpy as np
from sqlalchemy import and_, select, update
from sqlalchemy.sql.elements import ColumnElement

from service.coding import ReviewQueue, ReviewRequest, suggestion_dict
from service.db import ReviewItem, utcnow
from service.labels import NOT_AN_OFFENCE
from service.models.decided import DecidedRow
from service.models.policy import AUTO
from service.models.predictor import Classification
from service.review.queue import Queue, strictest
from service.review.values import (
    AUTO_CODED,
    DECIDED,
    OPEN_STATUSES,
    PENDING,
    SYSTEM_ACTOR,
    section_of,
)

log = logging.getLogger(__name__)

# Items re-scored after one decision: the most similar of the list (one model pass over this
# many short texts is a fraction of a second on the CPU, so the request can wait for it).
MAX_RESCORED = 500
# Items less similar than this to the decided text are not re-scored: the decided example
# cannot beat their training neighbours. Over 3 corrections on a 400-item list with the quick
# model, no item below 0.515 changed its top code while 40-50% of the list lay below 0.5.
RESCORE_MIN_SIMILARITY = 0.45
# Open items of one list the value order looks at (by records, most first): the similarity
# matrix among them is LIST_LIMIT**2 floats (16 MB at 2,000).
LIST_LIMIT = 2000
# Two texts at or above this cosine similarity of the encoder count as "moved by the same
# decision". Measured over the pairs of entries of each crosswalked national list (7 lists,
# labelled_data/crosswalks, the quick model's encoder): from 0.80 up, 76% of pairs share their
# full ICCS code and 95% their division (0.66 / 0.92 in the band 0.80-0.85 alone); in 0.75-0.80
# 61% / 90%, in 0.70-0.75 51% / 81%. From 0.80 a decision on one entry more likely than not
# codes the other, which is what the value of a decision should count.
SIMILAR = 0.80

Embed = Callable[[list[str]], np.ndarray]


class Rescorer(Protocol):
    """What re-scoring needs of :class:`service.coding.Coder`."""

    def rescore(
        self,
        texts: list[str],
        min_precision: float | None = None,
        table_precision: float | None = None,
    ) -> list[Classification]:
        """The model's current answer using the decided examples (no memory, no queueing)."""
        ...


@dataclass(frozen=True)
class ListKey:
    """One list: a batch, or (no batch) an origin."""

    batch: str | None
    origin: str | None

    @classmethod
    def of(cls, item: ReviewItem) -> ListKey:
        """The list ``item`` belongs to."""
        return cls(item.batch, None) if item.batch is not None else cls(None, item.origin)

    def where(self) -> ColumnElement[bool]:
        """SQL: the item is on this list."""
        t = ReviewItem
        if self.batch is not None:
            return t.batch == self.batch
        return and_(t.batch.is_(None), t.origin == self.origin)


@dataclass(frozen=True)
class OpenItem:
    """An open item of a list, as re-scoring and the value order read it."""

    id: int
    text: str
    occurrences: int
    top_confidence: float | None
    priority: float | None = None
    min_precision: float | None = None  # what its records were coded at (None: before 0009)
    table_precision: float | None = None  # an entry of a list coded as a table (0010)


@dataclass(frozen=True)
class Rescore:
    """The model's new answer for one item."""

    item_id: int
    suggestions: list[dict[str, object]]
    top_code: str | None
    top_confidence: float | None
    model_version: str
    auto_code: str | None = None  # the policy codes it on its own
    relied_on: tuple[int, ...] = ()  # review items of the decisions the answer used
    non_offence_probability: float | None = None  # the model's P(not an offence) now


@dataclass
class RescoreOutcome:
    """What one re-scoring pass did."""

    considered: int = 0
    auto_coded: list[int] = field(default_factory=list)
    moved: list[int] = field(default_factory=list)  # top code changed
    updated: int = 0
    skipped: int = 0  # claimed or decided meanwhile
    seconds: float = 0.0


class Rescoring(Queue):
    """The store side: open items of a list, applying new answers, the value column."""

    def rescore_candidates(self, item_id: int, limit: int = LIST_LIMIT) -> list[OpenItem]:
        """Items a decision on ``item_id`` may move: pending (not claimed), one review, same
        list, the most records first."""
        with self._sessions() as s:
            item = s.get(ReviewItem, item_id)
            if item is None:
                return []
            t = ReviewItem
            rows = s.execute(
                select(
                    t.id,
                    t.text,
                    t.occurrences,
                    t.top_confidence,
                    t.min_precision,
                    t.table_precision,
                )
                .where(
                    ListKey.of(item).where(),
                    t.status == PENDING,
                    t.claimed_by.is_(None),
                    t.reviews_required == 1,
                    t.id != item_id,
                )
                .order_by(t.occurrences.desc(), t.id)
                .limit(limit)
            ).all()
        return [
            OpenItem(int(i), str(x), int(n), c, min_precision=p, table_precision=tp)
            for i, x, n, c, p, tp in rows
        ]

    def open_items_of(self, key: ListKey, limit: int = LIST_LIMIT) -> list[OpenItem]:
        """Open items of a list (pending, claimed, disputed), the most records first."""
        t = ReviewItem
        with self._sessions() as s:
            rows = s.execute(
                select(t.id, t.text, t.occurrences, t.top_confidence, t.priority)
                .where(key.where(), t.status.in_(OPEN_STATUSES))
                .order_by(t.occurrences.desc(), t.id)
                .limit(limit)
            ).all()
        return [OpenItem(int(i), str(x), int(n), c, p) for i, x, n, c, p in rows]

    def lists_of(self, item_ids: Sequence[int]) -> list[ListKey]:
        """The lists the items belong to."""
        if not item_ids:
            return []
        t = ReviewItem
        out: set[ListKey] = set()
        with self._sessions() as s:
            ids = sorted(set(item_ids))
            for i in range(0, len(ids), 500):
                for batch, origin in s.execute(
                    select(t.batch, t.origin).where(t.id.in_(ids[i : i + 500])).distinct()
                ):
                    out.add(ListKey(batch, None) if batch is not None else ListKey(None, origin))
        return sorted(out, key=lambda k: (k.batch or "", k.origin or ""))

    def set_priorities(self, values: Mapping[int, float]) -> None:
        """Store expected values; items decided meanwhile keep theirs."""
        if not values:
            return
        with self._tx() as s:
            for item_id, value in sorted(values.items()):
                s.execute(
                    update(ReviewItem)
                    .where(ReviewItem.id == item_id, ReviewItem.status.in_(OPEN_STATUSES))
                    .values(priority=float(value))
                    .execution_options(synchronize_session=False)
                )

    def apply_rescores(self, rescores: Sequence[Rescore], trigger: int) -> RescoreOutcome:
        """Write new answers: auto-code what the policy now codes, update the rest.

        Each item is locked and checked again: one a reviewer claimed (or that was decided)
        since the candidates were read is left alone. ``trigger`` is the item whose decision
        started the pass; an auto-code relying on no decided example names it instead.
        """
        out = RescoreOutcome(considered=len(rescores))
        now = utcnow()
        with self._tx() as s:
            for r in sorted(rescores, key=lambda r: r.item_id):
                item = self._locked(s, r.item_id)
                if item.status != PENDING or item.claimed_by is not None:
                    out.skipped += 1
                    continue
                before = item.top_code
                item.suggestions = list(r.suggestions)
                item.top_code = r.top_code
                item.top_confidence = r.top_confidence
                item.non_offence_probability = r.non_offence_probability
                item.section = section_of(r.top_code)
                item.model_version = r.model_version
                if r.auto_code is not None:
                    relied = list(r.relied_on) or [trigger]
                    item.status = AUTO_CODED
                    item.decision = AUTO_CODED
                    item.decided_code = r.auto_code
                    item.decided_by = SYSTEM_ACTOR
                    item.decided_at = now
                    item.priority = None
                    self._audit(
                        s,
                        item,
                        SYSTEM_ACTOR,
                        AUTO_CODED,
                        PENDING,
                        AUTO_CODED,
                        before,
                        r.auto_code,
                        note=(
                            "relied on review item(s) "
                            + ", ".join(str(i) for i in relied)
                            + f"; model {r.model_version}; after the decision on item {trigger}"
                        ),
                    )
                    out.auto_coded.append(item.id)
                    continue
                out.updated += 1
                if before != r.top_code:
                    self._audit(
                        s,
                        item,
                        SYSTEM_ACTOR,
                        "rescored",
                        PENDING,
                        PENDING,
                        before,
                        r.top_code,
                        note=f"after the decision on item {trigger}; model {r.model_version}",
                    )
                    out.moved.append(item.id)
        return out


# --- embeddings ---------------------------------------------------------------------------


class TextEmbeddings:
    """Unit-length encoder embeddings of raw texts, with a bounded cache by text.

    The value order embeds every open item of a list after each enqueue and decision; most
    of them were embedded the time before, so the cache saves nearly all encoder runs.
    """

    def __init__(self, predictor: Any, size: int = 20_000) -> None:
        self.predictor = predictor
        self.size = size
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def __call__(self, texts: list[str]) -> np.ndarray:
        """One unit row per text."""
        with self._lock:
            found = {t: self._cache[t] for t in set(texts) if t in self._cache}
        missing = sorted(set(texts) - found.keys())
        if missing:
            found.update(zip(missing, self._encode(missing), strict=True))
            with self._lock:
                for t in missing:
                    self._cache[t] = found[t]
                while len(self._cache) > self.size:
                    self._cache.popitem(last=False)
        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        return np.vstack([found[t] for t in texts])

    def missing(self, texts: Sequence[str]) -> int:
        """How many distinct texts are not cached (would be encoded)."""
        with self._lock:
            return sum(1 for t in set(texts) if t not in self._cache)

    def _encode(self, texts: list[str]) -> np.ndarray:
        normalise = self.predictor.normalizer
        emb = np.asarray(
            self.predictor.encoder.encode([normalise(t) for t in texts]), dtype=np.float32
        )
        norms = np.linalg.norm(emb, axis=1, keepdims=True)
        return np.asarray(emb / np.where(norms > 0, norms, 1.0), dtype=np.float32)


_EMBEDDERS: weakref.WeakKeyDictionary[Any, TextEmbeddings] = weakref.WeakKeyDictionary()
_EMBEDDERS_LOCK = threading.Lock()


def embeddings_for(coder: Any) -> Embed:
    """The cached embedder of ``coder``'s predictor (one per loaded model)."""
    return embeddings_of(coder.predictor)


def embeddings_of(predictor: Any) -> Embed:
    """The cached embedder of ``predictor``.

    The embedder reaches its predictor through a weak proxy: a value that held its weak key
    strongly would keep every model ever loaded in memory (each app of a process, each
    reload), about 250 MB a model.
    """
    with _EMBEDDERS_LOCK:
        found = _EMBEDDERS.get(predictor)
        if found is None:
            found = _EMBEDDERS[predictor] = TextEmbeddings(weakref.proxy(predictor))
        return found


# --- the value order ----------------------------------------------------------------------


def expected_values(
    items: Sequence[OpenItem], emb: np.ndarray, rows: np.ndarray | None = None
) -> dict[int, float]:
    """Uncertainty x (own records + records of the items at or above :data:`SIMILAR`), for
    ``items[rows]`` (all by default); ``emb`` holds one unit row per item."""
    if not items:
        return {}
    picked = np.arange(len(items)) if rows is None else np.asarray(rows, dtype=np.intp)
    occ = np.asarray([i.occurrences for i in items], dtype=np.float64)
    near = (emb[picked] @ emb.T) >= SIMILAR
    near[np.arange(len(picked)), picked] = True  # an item always settles its own records
    reach = near.astype(np.float64) @ occ
    unsure = np.asarray([1.0 - (items[r].top_confidence or 0.0) for r in picked])
    return {items[r].id: round(float(v), 6) for r, v in zip(picked, unsure * reach, strict=True)}


def _same(stored: float | None, value: float) -> bool:
    return stored is not None and abs(stored - value) <= 1e-6


def refresh_values(
    store: Rescoring,
    embed: Embed,
    key: ListKey,
    around: Collection[int] | None = None,
    max_cold: int | None = None,
) -> int:
    """Recompute the expected values of a list's open items; how many changed.

    With ``around`` (items just queued or grown) only those and the items similar to them
    can change, so only their values are computed: an enqueue costs one row of similarities
    per new item, not the whole list's matrix. With ``max_cold``, a list whose texts the
    cached embedder would have to encode more of than that is left for later (after a
    restart, the first decision on the list refreshes it whole).
    """
    items = store.open_items_of(key)
    if not items:
        return 0
    texts = [i.text for i in items]
    if max_cold is not None and isinstance(embed, TextEmbeddings):
        if embed.missing(texts) > max_cold:
            log.info("review values of a list left for its next decision (embeddings cold)")
            return 0
    emb = embed(texts)
    rows = None
    if around is not None:
        wanted = np.asarray([i.id in around for i in items])
        if not wanted.any():
            return 0
        touched = ((emb[wanted] @ emb.T) >= SIMILAR).any(axis=0)
        rows = np.flatnonzero(touched | wanted)
    values = expected_values(items, emb, rows)
    before = {i.id: i.priority for i in items}
    changed = {i: v for i, v in values.items() if not _same(before[i], v)}
    store.set_priorities(changed)
    return len(changed)


# --- after a decision ---------------------------------------------------------------------


def _rescore_of(item: OpenItem, res: Classification) -> Rescore:
    top = res.suggestions[0] if res.suggestions else None
    auto = res.assigned.code if res.status == AUTO and res.assigned is not None else None
    return Rescore(
        item_id=item.id,
        suggestions=[suggestion_dict(sg) for sg in res.suggestions],
        top_code=top.code if top else None,
        top_confidence=top.confidence if top else None,
        model_version=res.model_version,
        auto_code=auto,
        relied_on=tuple(int(i) for i in res.relied_on),
        non_offence_probability=res.non_offence_probability,
    )


def rescore_after_decision(
    store: Rescoring,
    coder: Rescorer,
    item_id: int,
    embed: Embed | None = None,
    min_precision: float | None = None,
) -> RescoreOutcome:
    """Re-score the pending items of the decided item's list; nothing unless it is decided.

    ``embed`` picks the :data:`MAX_RESCORED` items most similar to the decided text, leaves
    out those below :data:`RESCORE_MIN_SIMILARITY`, and refreshes the list's expected values
    afterwards; without it the first :data:`MAX_RESCORED` items (most records first) are
    re-scored.
    """
    start = time.perf_counter()
    item = store.get(item_id)
    if item.status != DECIDED:
        return RescoreOutcome()
    # "Not an offence" teaches the nearest examples nothing: no model pass, values only.
    teaches = item.decided_code not in (None, NOT_AN_OFFENCE)
    candidates = store.rescore_candidates(item_id) if teaches else []
    if embed is not None and candidates:
        emb = embed([item.text] + [c.text for c in candidates])
        sims = emb[1:] @ emb[0]
        keep = np.argsort(-sims, kind="stable")[:MAX_RESCORED]
        keep = keep[sims[keep] >= RESCORE_MIN_SIMILARITY]
        candidates = [candidates[i] for i in sorted(keep)]
    else:
        candidates = candidates[:MAX_RESCORED]
    outcome = RescoreOutcome()
    if candidates:
        # Each item at the precision its records were coded at, or the call's if stricter, and
        # as a table's entry where it is one: one model pass per pair.
        by_precision: dict[tuple[float | None, float | None], list[OpenItem]] = {}
        for c in candidates:
            key = (strictest(c.min_precision, min_precision), c.table_precision)
            by_precision.setdefault(key, []).append(c)
        rescores = []
        for (p, table), group in by_precision.items():
            kw = {} if table is None else {"table_precision": table}
            results = coder.rescore([c.text for c in group], min_precision=p, **kw)
            rescores += [_rescore_of(c, r) for c, r in zip(group, results, strict=True)]
        outcome = store.apply_rescores(rescores, trigger=item_id)
    if embed is not None:
        refresh_values(store, embed, ListKey.of(item))
    outcome.seconds = time.perf_counter() - start
    return outcome


class ValuedQueue:
    """A review queue that keeps the expected values of the lists it enqueues into.

    Wraps what :class:`service.coding.Coder` enqueues through (the store, or its serialised
    wrapper). A failed refresh is logged and leaves the values set at enqueue (uncertainty x
    own records): it never fails the call that queued the records.
    """

    def __init__(
        self, queue: ReviewQueue, store: Rescoring, embed: Embed, max_cold: int = 256
    ) -> None:
        self.queue = queue
        self.store = store
        self.embed = embed
        # A classify call waits for its enqueue: it encodes at most this many texts of the
        # list that the cache lacks (after a restart), else the list's next decision
        # refreshes it. A run (job, bulk file: ``source`` set) refreshes whatever it costs.
        self.max_cold = max_cold

    def enqueue(self, items: Sequence[ReviewRequest], source: str | None = None) -> list[int]:
        """Enqueue, then refresh the values around the queued items in each of their lists."""
        ids = self.queue.enqueue(items, source=source)
        cold = None if source is not None else self.max_cold
        try:
            for key in self.store.lists_of(ids):
                refresh_values(self.store, self.embed, key, around=set(ids), max_cold=cold)
        except Exception:  # noqa: BLE001 - the records are queued; the order can wait
            log.warning("refreshing review values after enqueue failed", exc_info=True)
        return ids

    def memory_lookup_items(self, text_keys: Sequence[str]) -> dict[str, tuple[str, int | None]]:
        """Passed through."""
        return self.queue.memory_lookup_items(text_keys)

    def decided_examples(self, since: datetime | None = None) -> list[DecidedRow]:
        """Passed through."""
        return self.queue.decided_examples(since)

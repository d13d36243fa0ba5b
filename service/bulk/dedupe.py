"""Dedupe plus classification: each distinct text goes to the model once per run.

Legacy files repeat a few thousand descriptions millions of times. :class:`TextClassifier`
keys every text with ``service.normalize.dedupe_key``, classifies each new key once, and fans
the answer out to every row that carries it, keeping a bounded key -> result cache in memory
(with an optional second-level ``lookup``, the checkpoint, behind it).
"""

from __future__ import annotations

import json
from collections import Counter, OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from service.bulk.contract import TRUNCATED, RowResult, rejected_result, row_result
from service.coding import Coder, suggestion_dict
from service.models.policy import REVIEW, unusable_text_reason
from service.normalize import dedupe_key

# Distinct texts sent to the model at once: bounds the probability matrices in memory.
CLASSIFY_BATCH = 4096
_NO_KEY = object()


@dataclass
class ChunkCoding:
    """The classified rows of one chunk and what the checkpoint must remember."""

    results: list[RowResult]
    key_counts: Counter[str]
    # key -> result, text, id, suggestions, P(not an offence): what a review item needs that
    # the output row does not carry.
    new: dict[str, tuple[RowResult, str, str | None, str, float | None]]
    by_key: dict[str, RowResult] = field(default_factory=dict)

    def status(self, key: str) -> str:
        """Status of a key coded in this chunk."""
        return self.by_key[key].status


class TextClassifier:
    """Classifies each distinct text once and fans the result out to its rows.

    ``lookup`` is the second-level cache (the checkpoint) consulted for keys the bounded
    in-memory cache no longer holds.
    """

    def __init__(
        self,
        coder: Coder,
        *,
        top_k: int = 5,
        min_precision: float | None = None,
        table_precision: float | None = None,
        cache_size: int = 100_000,
        lookup: Callable[[Sequence[str]], dict[str, RowResult]] | None = None,
        max_text_length: int | None = None,
    ) -> None:
        self.coder = coder
        self.top_k = top_k
        self.min_precision = min_precision
        self.table_precision = table_precision
        self.cache_size = cache_size
        self.lookup = lookup
        self.max_text_length = max_text_length
        self.cache: OrderedDict[str, RowResult] = OrderedDict()
        # Raw text -> key: computing a key (NFKC, regex, SHA-1) costs more than the lookup.
        self._keys: dict[str, str | None] = {}
        self.model_calls = 0
        self.texts_classified = 0

    @property
    def model_version(self) -> str:
        """Version of the model behind the coder."""
        return str(self.coder.predictor.version)

    def key_of(self, text: str) -> str | None:
        """The dedupe key of a text, None for unusable text (memoised, bounded)."""
        key = self._keys.get(text, _NO_KEY)
        if key is _NO_KEY:
            if len(self._keys) >= self.cache_size:
                self._keys.clear()
            key = self._keys[text] = None if unusable_text_reason(text) else dedupe_key(text)
        return key  # type: ignore[return-value]

    def code(
        self,
        texts: Sequence[str],
        ids: Sequence[str | None] | None = None,
        reasons: Sequence[str | None] | None = None,
    ) -> ChunkCoding:
        """Results for the rows of one chunk, in row order."""
        version = self.model_version
        n = len(texts)
        ids = ids if ids is not None else [None] * n
        reasons = reasons if reasons is not None else [None] * n
        cap = self.max_text_length
        cut: list[int] = []
        if cap is not None:
            # Cut before the key and the model: a text's cost never depends on its length
            # beyond the cap (the API refuses such texts; a file's rows are coded anyway).
            cut = [i for i, t in enumerate(texts) if len(t) > cap]
            if cut:
                texts = list(texts)
                for i in cut:
                    texts[i] = texts[i][:cap]
        keys: list[str | None] = []
        first: dict[str, int] = {}
        for i, (text, reason) in enumerate(zip(texts, reasons, strict=True)):
            key = None if reason is not None else self.key_of(text)
            keys.append(key)
            if key is not None and key not in first:
                first[key] = i
        # This chunk's results by key, gathered before the bounded cache may evict any.
        local: dict[str, RowResult] = {}
        missing = []
        for k in first:
            hit = self.cache.get(k)
            if hit is None:
                missing.append(k)
            else:
                local[k] = hit
        if missing and self.lookup is not None:
            local.update(self.lookup(missing))
            missing = [k for k in missing if k not in local]
        new: dict[str, tuple[RowResult, str, str | None, str, float | None]] = {}
        for start in range(0, len(missing), CLASSIFY_BATCH):
            batch = missing[start : start + CLASSIFY_BATCH]
            coded = self.coder.code(
                [texts[first[k]] for k in batch],
                record_ids=[ids[first[k]] for k in batch],
                top_k=self.top_k,
                min_precision=self.min_precision,
                queue_review=False,
                table_precision=self.table_precision,
            )
            self.model_calls += 1
            self.texts_classified += len(batch)
            for k, rec in zip(batch, coded, strict=True):
                res = row_result(rec)
                local[k] = res
                suggestions = ""
                if res.status == REVIEW:
                    suggestions = json.dumps(
                        [suggestion_dict(s) for s in rec.result.suggestions], ensure_ascii=False
                    )
                non_offence = rec.result.non_offence_probability
                new[k] = (res, texts[first[k]], ids[first[k]], suggestions, non_offence)
        results: list[RowResult] = []
        for i, row_key in enumerate(keys):
            if row_key is None:
                why = reasons[i] or unusable_text_reason(texts[i]) or "unusable_text"
                results.append(rejected_result(why, version))
            else:
                results.append(local[row_key])
        for i in cut:
            # Per row, not per key: a short text may share the key of a long one's beginning.
            if results[i].reason is None:
                results[i] = results[i]._replace(reason=TRUNCATED)
        for k, res in local.items():
            self._remember(k, res)
        counts = Counter(k for k in keys if k is not None)
        return ChunkCoding(results, counts, new, local)

    def _remember(self, key: str, res: RowResult) -> None:
        self.cache[key] = res
        if len(self.cache) > self.cache_size:
            self.cache.popitem(last=False)

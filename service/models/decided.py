"""Reviewers' decisions as labelled examples of the nearest-example component, at once.

A reviewer's final code for a text (the active decision-memory entry) joins the nearest
labelled examples without retraining: for every later text the per-class similarity the scorer
adds to the head's logits is the best of the training examples and the decided ones. A decided
example never boosts the text it was decided for (same text key): reusing a decision on an
identical text is decision memory's job, under its agreement rule (issue 16 #10).

The index lives in memory, in the projected space of the predictor's
:class:`~service.models.neighbours.NearestExamples`; :class:`service.coding.Coder` keeps it in
step with the review store.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np

from service.labels import NOT_AN_OFFENCE
from service.models.tree import ancestors_and_self

# At most this many decided examples are named in an answer's ``relied_on`` (nearest first).
RELIED_ON_MAX = 5


@dataclass(frozen=True)
class DecidedNeighbour:
    """A decided example near a text, for reviewers: which decision, and how close."""

    item_id: int
    text: str
    code: str
    similarity: float


@dataclass(frozen=True)
class DecidedRow:
    """An active (or retired) decision-memory entry as the review store lists it."""

    text_key: str
    text: str
    code: str
    item_id: int | None
    decided_at: datetime
    retired: bool = False


@dataclass(frozen=True)
class DecidedSnapshot:
    """The index at one moment: arrays a scoring pass reads while the index moves on."""

    embeddings: np.ndarray  # (m, d) unit rows in the projected space
    columns: np.ndarray  # (m,) head class column of each example, -1: no bonus
    item_ids: np.ndarray  # (m,) review item id, -1 when the entry has none
    keys: list[str]
    texts: list[str]
    codes: list[str]
    _order: np.ndarray = field(init=False, repr=False)
    _starts: np.ndarray = field(init=False, repr=False)
    _present: np.ndarray = field(init=False, repr=False)
    _position: dict[str, int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        # Examples that add a bonus, sorted by class, so one reduceat takes each class's
        # maximum (as NearestExamples does for the training examples).
        counting = np.flatnonzero(self.columns >= 0)
        order = counting[np.argsort(self.columns[counting], kind="stable")]
        cols = self.columns[order]
        starts = np.flatnonzero(np.r_[True, cols[1:] != cols[:-1]]) if len(cols) else cols
        object.__setattr__(self, "_order", order)
        object.__setattr__(self, "_starts", starts)
        object.__setattr__(self, "_present", cols[starts] if len(cols) else cols)
        object.__setattr__(self, "_position", {k: i for i, k in enumerate(self.keys)})

    def __len__(self) -> int:
        return len(self.keys)

    def similarities(self, queries: np.ndarray, query_keys: Sequence[str]) -> np.ndarray:
        """``(len(queries), m)`` cosine similarities; -inf against an example of the same text.

        ``queries`` are already projected (unit rows).
        """
        if len(self) == 0 or len(queries) == 0:
            return np.full((len(queries), len(self)), -np.inf)
        sims = np.asarray(queries @ self.embeddings.T, dtype=np.float64)
        where = self._position
        for row, key in enumerate(query_keys):
            col = where.get(key)
            if col is not None:
                sims[row, col] = -np.inf
        return sims

    def class_scores(self, sims: np.ndarray, n_classes: int) -> np.ndarray:
        """``(rows, n_classes)``: best similarity per class among decided examples, -inf where
        no decided example of the class counts."""
        out = np.full((sims.shape[0], n_classes), -np.inf)
        if len(self._order) and sims.shape[0]:
            out[:, self._present] = np.maximum.reduceat(sims[:, self._order], self._starts, axis=1)
        return out

    def relied_on(
        self, sims_row: np.ndarray, train_row: np.ndarray, class_columns: np.ndarray
    ) -> list[int]:
        """Item ids of the decided examples, of any of ``class_columns``, whose similarity beat
        the training examples' for their class (nearest first, at most :data:`RELIED_ON_MAX`)."""
        if len(self) == 0:
            return []
        mine = np.isin(self.columns, class_columns) & (self.item_ids >= 0)
        beat = mine & (sims_row > train_row[np.clip(self.columns, 0, None)])
        picked = np.flatnonzero(beat)
        picked = picked[np.argsort(-sims_row[picked], kind="stable")][:RELIED_ON_MAX]
        return [int(self.item_ids[e]) for e in picked]

    def nearest(self, sims_row: np.ndarray, k: int) -> list[DecidedNeighbour]:
        """The ``k`` nearest decided examples (same-text ones excluded)."""
        order = np.argsort(-sims_row, kind="stable")[:k]
        return [
            DecidedNeighbour(
                int(self.item_ids[e]), self.texts[e], self.codes[e], round(float(sims_row[e]), 4)
            )
            for e in order
            if np.isfinite(sims_row[e]) and self.item_ids[e] >= 0
        ]


@dataclass(frozen=True)
class _Entry:
    text: str
    code: str
    item_id: int | None
    column: int
    embedding: np.ndarray


class DecidedExamples:
    """In-memory index of decided examples: text key -> (projected embedding, class column,
    review item id, text, code). Safe to read while another thread adds or removes.

    ``classes`` are the head's classes, ``project`` the nearest-example component's projection
    (raw encoder embeddings -> unit rows in its space).
    """

    def __init__(
        self, classes: Iterable[object], project: Callable[[np.ndarray], np.ndarray]
    ) -> None:
        self.classes = [str(c) for c in classes]
        self._column = {c: i for i, c in enumerate(self.classes)}
        self.project = project
        self._entries: dict[str, _Entry] = {}
        self._lock = threading.Lock()
        self._snapshot: DecidedSnapshot | None = None

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, text_key: object) -> bool:
        return text_key in self._entries

    def keys(self) -> set[str]:
        """Text keys in the index."""
        with self._lock:
            return set(self._entries)

    def get(self, text_key: str) -> tuple[str, str, int | None] | None:
        """(text, code, item id) of the example for ``text_key``, if any."""
        e = self._entries.get(text_key)
        return None if e is None else (e.text, e.code, e.item_id)

    def column_of(self, code: str) -> int:
        """The head class a decided code teaches, -1 for none.

        A code deeper than the head's classes counts for its nearest ancestor among them; a
        code shallower than every class of its branch names no single class and adds nothing.
        ``not_an_offence`` adds nothing either: the head's own not-an-offence column and the
        reject rule handle non-offences, and a bonus there would override that calibration.
        """
        if code == NOT_AN_OFFENCE:
            return -1
        for name in reversed(ancestors_and_self(code)):
            if name in self._column:
                return self._column[name]
        return -1

    def add(
        self, text_key: str, text: str, code: str, item_id: int | None, embedding: np.ndarray
    ) -> None:
        """Add or replace the example for ``text_key``; ``embedding`` is the encoder's raw
        embedding of the text (projected here)."""
        projected = self.project(np.asarray(embedding, dtype=np.float32).reshape(1, -1))[0]
        entry = _Entry(text, code, item_id, self.column_of(code), projected)
        with self._lock:
            self._entries[text_key] = entry
            self._snapshot = None

    def relabel(self, text_key: str, text: str, code: str, item_id: int | None) -> bool:
        """Change the text/code/item of an example already indexed, keeping its embedding (the
        same text key is the same normalised text); False when the key is not indexed."""
        with self._lock:
            e = self._entries.get(text_key)
            if e is None:
                return False
            if (e.text, e.code, e.item_id) != (text, code, item_id):
                self._entries[text_key] = _Entry(
                    text, code, item_id, self.column_of(code), e.embedding
                )
                self._snapshot = None
            return True

    def remove(self, text_key: str) -> None:
        """Drop the example for ``text_key`` (no error when absent)."""
        with self._lock:
            if self._entries.pop(text_key, None) is not None:
                self._snapshot = None

    def snapshot(self) -> DecidedSnapshot:
        """The current examples as arrays (rebuilt only after a change)."""
        with self._lock:
            if self._snapshot is None:
                keys = list(self._entries)
                entries = [self._entries[k] for k in keys]
                dim = entries[0].embedding.shape[0] if entries else 0
                self._snapshot = DecidedSnapshot(
                    embeddings=np.ascontiguousarray(
                        np.stack([e.embedding for e in entries])
                        if entries
                        else np.zeros((0, dim), dtype=np.float32),
                        dtype=np.float32,
                    ),
                    columns=np.array([e.column for e in entries], dtype=np.intp),
                    item_ids=np.array(
                        [-1 if e.item_id is None else e.item_id for e in entries], dtype=np.int64
                    ),
                    keys=keys,
                    texts=[e.text for e in entries],
                    codes=[e.code for e in entries],
                )
            return self._snapshot

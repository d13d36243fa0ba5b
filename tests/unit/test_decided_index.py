"""The in-memory index of reviewers' decided examples (service/models/decided.py), on
synthetic vectors."""

from __future__ import annotations

import numpy as np

from service.models.decided import RELIED_ON_MAX, DecidedExamples

CLASSES = ["0101", "0201", "02011", "not_an_offence"]


def unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def vec(*xs: float) -> np.ndarray:
    return np.array(xs, dtype=np.float32)


def test_a_decided_code_teaches_its_nearest_class_or_nothing() -> None:
    index = DecidedExamples(CLASSES, unit)
    assert index.column_of("02011") == 2
    assert index.column_of("020111") == 2  # deeper than the head: its nearest ancestor class
    assert index.column_of("010111") == 0
    assert index.column_of("02") == -1  # shallower than every class of its branch
    assert index.column_of("0501") == -1  # no class in its branch
    assert index.column_of("not_an_offence") == -1  # the head's own column decides those


def test_add_relabel_remove_and_snapshots() -> None:
    index = DecidedExamples(CLASSES, unit)
    index.add("ka", "text a", "0201", 7, vec(1, 0, 0))
    index.add("kb", "text b", "0101", 8, vec(0, 2, 0))  # projected: unit length
    snap = index.snapshot()
    assert snap is index.snapshot()  # rebuilt only after a change
    assert snap.keys == ["ka", "kb"] and list(snap.columns) == [1, 0]
    assert np.allclose(np.linalg.norm(snap.embeddings, axis=1), 1.0)
    assert index.relabel("ka", "text a", "0201", 7) and index.snapshot() is snap  # no change
    assert index.relabel("ka", "Text A", "0101", 9)
    assert index.get("ka") == ("Text A", "0101", 9) and index.snapshot() is not snap
    assert not index.relabel("kc", "x", "0101", 1)
    index.remove("kb")
    index.remove("kb")  # absent: no error
    assert index.keys() == {"ka"} and list(index.snapshot().item_ids) == [9]


def test_scores_exclude_the_same_text_and_relied_on_needs_to_beat_training() -> None:
    index = DecidedExamples(CLASSES, unit)
    index.add("ka", "a", "0201", 1, vec(1, 0, 0))
    index.add("kb", "b", "0201", 2, vec(1, 1, 0))
    index.add("kn", "n", "not_an_offence", 3, vec(1, 0.1, 0))
    snap = index.snapshot()
    q = unit(vec(1, 0.05, 0).reshape(1, -1))
    sims = snap.similarities(q, ["ka"])
    assert sims[0, 0] == -np.inf and np.isfinite(sims[0, 1:]).all()
    scores = snap.class_scores(sims, len(CLASSES))
    assert scores[0, 1] == sims[0, 1]  # only kb counts for 0201 (ka is the same text)
    assert np.isneginf(scores[0, [0, 2, 3]]).all()  # not_an_offence adds nothing
    low, high = np.zeros(len(CLASSES)), np.full(len(CLASSES), 0.99)
    assert snap.relied_on(sims[0], low, np.array([1])) == [2]
    assert snap.relied_on(sims[0], high, np.array([1])) == []  # training is closer
    assert snap.relied_on(sims[0], low, np.array([0])) == []  # another class
    near = snap.nearest(sims[0], 5)
    assert [n.item_id for n in near] == [3, 2]  # nearest first, same text left out


def test_relied_on_names_at_most_the_nearest_few() -> None:
    index = DecidedExamples(CLASSES, unit)
    for i in range(RELIED_ON_MAX + 3):
        index.add(f"k{i}", f"t{i}", "0101", 100 + i, vec(1, 0.1 * i, 0))
    snap = index.snapshot()
    sims = snap.similarities(unit(vec(1, 0, 0).reshape(1, -1)), ["other"])
    relied = snap.relied_on(sims[0], np.zeros(len(CLASSES)), np.array([0]))
    assert relied == [100 + i for i in range(RELIED_ON_MAX)]

"""The nearest-example component: per-class maxima of cosine similarity."""

from __future__ import annotations

import numpy as np

from service.models.neighbours import NearestExamples


def _unit(rows: list[list[float]]) -> np.ndarray:
    a = np.asarray(rows, dtype=np.float32)
    return a / np.linalg.norm(a, axis=1, keepdims=True)


def test_scores_are_the_best_similarity_per_class() -> None:
    train = _unit([[1, 0, 0], [0.6, 0.8, 0], [0, 1, 0], [0, 0, 1]])
    labels = ["0501", "0701", "0501", "0701"]  # classes interleaved on purpose
    nn = NearestExamples(train, labels, classes=["0501", "0701", "0201"])
    q = _unit([[1, 0, 0], [0, 0.6, 0.8]])
    got = nn.scores(q)
    expected = np.array(
        [
            [1.0, 0.6, 0.0],  # 0501: row 0 exactly; 0701: row 1 (0.6); 0201 has no rows
            [0.6, 0.8, 0.0],  # 0501: row 2 (0.6); 0701: row 3 (0.8)
        ]
    )
    np.testing.assert_allclose(got, expected, atol=1e-6)


def test_brute_force_agreement_on_random_data() -> None:
    rng = np.random.default_rng(3)
    train = _unit(rng.normal(size=(200, 16)).tolist())
    classes = [f"0{k}" for k in range(1, 10)]
    labels = rng.choice(classes[:7], size=200).tolist()
    q = _unit(rng.normal(size=(5, 16)).tolist())
    got = NearestExamples(train, labels, classes, dimensions=None).scores(q)
    sims = q @ train.T
    for j, c in enumerate(classes):
        mask = np.array([lab == c for lab in labels])
        want = sims[:, mask].max(axis=1) if mask.any() else np.zeros(len(q))
        np.testing.assert_allclose(got[:, j], want, atol=1e-6)


def test_empty_queries() -> None:
    nn = NearestExamples(_unit([[1, 0]]), ["01"], ["01", "02"])
    assert nn.scores(np.zeros((0, 2), dtype=np.float32)).shape == (0, 2)


def test_reduced_index_still_finds_each_record_itself() -> None:
    rng = np.random.default_rng(5)
    train = _unit(rng.normal(size=(300, 32)).tolist())
    labels = [f"0{k % 9 + 1}" for k in range(300)]
    nn = NearestExamples(train, labels, sorted(set(labels)), dimensions=8)
    assert nn.embeddings.shape == (300, 8)
    got = nn.scores(train[:20])
    own = [sorted(set(labels)).index(lab) for lab in labels[:20]]
    np.testing.assert_allclose(got[np.arange(20), own], 1.0, atol=1e-5)
    assert (got <= 1.0 + 1e-5).all()

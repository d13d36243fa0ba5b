import numpy as np
import pytest
from sklearn.utils.estimator_checks import parametrize_with_checks

from service.models.hierarchy import HierarchicalClassifier
from service.models.tree import ancestors_and_self, node_aggregation


@parametrize_with_checks([HierarchicalClassifier(max_iter=500)])
def test_sklearn_compatible(estimator, check):
    check(estimator)


def _toy():
    rng = np.random.default_rng(0)
    labels = np.array(["020111", "020112", "0502", "not_an_offence"] * 30, dtype=object)
    centers = {c: rng.normal(size=5) * 3 for c in set(labels)}
    X = np.stack([centers[c] + rng.normal(size=5) * 0.5 for c in labels])
    return X, labels


def test_node_probabilities_are_consistent_down_the_tree():
    X, y = _toy()
    clf = HierarchicalClassifier().fit(X, y)
    nodes = clf.node_proba(X)
    idx = {n: i for i, n in enumerate(clf.nodes_)}
    np.testing.assert_allclose(
        nodes[:, idx["02011"]], nodes[:, idx["020111"]] + nodes[:, idx["020112"]]
    )
    np.testing.assert_allclose(nodes[:, idx["02"]], nodes[:, idx["0201"]])
    # Sections plus the non-offence node cover all the probability.
    total = nodes[:, idx["02"]] + nodes[:, idx["05"]] + nodes[:, idx["not_an_offence"]]
    np.testing.assert_allclose(total, 1.0)


def test_temperature_softens_without_changing_the_ranking():
    X, y = _toy()
    clf = HierarchicalClassifier().fit(X, y)
    sharp = clf.predict_proba(X)
    clf.temperature = 5.0
    soft = clf.predict_proba(X)
    assert (soft.max(axis=1) < sharp.max(axis=1)).all()
    assert (soft.argmax(axis=1) == sharp.argmax(axis=1)).all()


def test_prefix_helpers():
    assert ancestors_and_self("050111") == ["05", "0501", "05011", "050111"]
    nodes, m = node_aggregation(np.array(["0501", "050111"], dtype=object))
    assert nodes == ["05", "0501", "05011", "050111"]
    assert m.shape == (2, 4)


def test_unfitted_raises():
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        HierarchicalClassifier().predict(np.zeros((1, 3)))


def test_linear_head_scores_like_the_estimator():
    from service.models.linear_head import LinearHead

    X, y = _toy()
    multi = HierarchicalClassifier(temperature=1.3).fit(X, y)
    head = LinearHead.from_estimator(multi)
    np.testing.assert_allclose(head.logits(X), multi.logits(X), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(head.predict_proba(X), multi.predict_proba(X), rtol=1e-6)
    assert list(head.nodes_) == list(multi.nodes_)
    binary = HierarchicalClassifier().fit(X[:60], np.where(y[:60] == "0502", "0502", "0101"))
    np.testing.assert_allclose(
        LinearHead.from_estimator(binary).logits(X[:60]), binary.logits(X[:60]), rtol=1e-6
    )
    with pytest.raises(ValueError, match="features"):
        head.logits(X[:, :3])

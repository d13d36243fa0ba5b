"""Hierarchical ICCS classifier with probabilities consistent down the tree.

The head is a flat softmax over *target nodes*: every code that occurs as a label, at
whatever depth (a class, a group without classes, a division without groups, or a parent
used when a text cannot be placed lower). A node's probability is the sum over the target
nodes in its subtree, itself included, so a parent's probability is exactly the sum of its
children's plus its own "unspecified" share, and back-off only ever gains probability.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.special import softmax
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.linear_model import LogisticRegression
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

_PREFIX_LENGTHS = (2, 4, 5, 6)


def is_iccs_like(label: object) -> bool:
    """True for strings shaped like ICCS codes (their ancestors are their prefixes)."""
    return isinstance(label, str) and label.isdigit() and len(label) in _PREFIX_LENGTHS


def ancestors_and_self(code: str) -> list[str]:
    """``'020111'`` -> ``['02', '0201', '02011', '020111']``."""
    return [code[:n] for n in _PREFIX_LENGTHS if n <= len(code)]


def node_aggregation(classes: np.ndarray) -> tuple[list[str], np.ndarray]:
    """Nodes of the tree spanned by ``classes`` and the 0/1 matrix classes x nodes.

    Non-ICCS labels (``not_an_offence``) stay nodes of their own, outside the tree.
    """
    nodes: list[str] = []
    index: dict[str, int] = {}
    pairs: list[tuple[int, int]] = []
    for ci, label in enumerate(classes):
        names = ancestors_and_self(str(label)) if is_iccs_like(label) else [str(label)]
        for name in names:
            if name not in index:
                index[name] = len(nodes)
                nodes.append(name)
            pairs.append((ci, index[name]))
    matrix = np.zeros((len(classes), len(nodes)), dtype=np.float64)
    for ci, ni in pairs:
        matrix[ci, ni] = 1.0
    return nodes, matrix


class HierarchicalClassifier(ClassifierMixin, BaseEstimator):  # type: ignore[misc]
    """Multinomial logistic regression over target nodes, with tree-consistent node scores.

    Parameters follow :class:`~sklearn.linear_model.LogisticRegression`. ``temperature``
    divides the logits before the softmax; calibration sets it on held-out data.
    """

    def __init__(
        self,
        C: float = 10.0,
        max_iter: int = 300,
        class_weight: str | dict[Any, float] | None = None,
        temperature: float = 1.0,
        tol: float = 1e-4,
    ) -> None:
        self.C = C
        self.max_iter = max_iter
        self.class_weight = class_weight
        self.temperature = temperature
        self.tol = tol

    def fit(self, X: Any, y: Any) -> HierarchicalClassifier:
        """Fit the softmax over the labels seen in ``y``."""
        X, y = validate_data(self, X, y, accept_sparse="csr")
        check_classification_targets(y)
        self.estimator_ = LogisticRegression(
            C=self.C, max_iter=self.max_iter, class_weight=self.class_weight, tol=self.tol
        )
        self.estimator_.fit(X, y)
        self.classes_ = self.estimator_.classes_
        self.n_iter_ = self.estimator_.n_iter_
        self.nodes_, self.node_matrix_ = node_aggregation(self.classes_)
        return self

    def __sklearn_tags__(self):  # type: ignore[no-untyped-def]
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        return tags

    def decision_function(self, X: Any) -> np.ndarray:
        """Scores as scikit-learn defines them (one column for two classes)."""
        check_is_fitted(self)
        X = validate_data(self, X, accept_sparse="csr", reset=False)
        return np.asarray(self.estimator_.decision_function(X), dtype=np.float64)

    def logits_trusted(self, X: Any) -> np.ndarray:
        """:meth:`logits` for features the service built itself (finite, the fitted width).

        Skips scikit-learn's input validation, which costs more than the product itself for
        one record (the service scores records one at a time).
        """
        check_is_fitted(self)
        if not (isinstance(X, np.ndarray) and X.ndim == 2 and X.shape[1] == self.n_features_in_):
            return self.logits(X)
        est = self.estimator_
        scores = np.asarray(X @ est.coef_.T + est.intercept_, dtype=np.float64)
        if scores.shape[1] == 1:  # binary: one margin m is the softmax of (-m/2, m/2)
            return np.column_stack([-scores[:, 0] / 2.0, scores[:, 0] / 2.0])
        return scores

    def logits(self, X: Any) -> np.ndarray:
        """Softmax inputs, one column per class whatever the number of classes."""
        scores = self.decision_function(X)
        if scores.ndim == 1:  # binary: one margin m is the softmax of (-m/2, m/2)
            scores = np.column_stack([-scores / 2.0, scores / 2.0])
        return scores

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities at the fitted temperature."""
        return np.asarray(softmax(self.logits(X) / self.temperature, axis=1))

    def predict(self, X: Any) -> np.ndarray:
        """Most probable target node."""
        check_is_fitted(self)
        return np.asarray(self.classes_[np.argmax(self.logits(X), axis=1)])

    def node_proba(self, X: Any) -> np.ndarray:
        """Probabilities of every node in ``nodes_`` (consistent: parent = sum of subtree)."""
        return np.asarray(self.predict_proba(X) @ self.node_matrix_)

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

from service.models.tree import node_aggregation


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

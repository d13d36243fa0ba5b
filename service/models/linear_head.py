"""A fitted hierarchical head reduced to its arrays: what scoring needs, without scikit-learn.

Training fits :class:`service.models.hierarchy.HierarchicalClassifier` (a scikit-learn
estimator, checked with ``check_estimator``) and keeps a :class:`LinearHead` of it. The head's
logits are one matrix product; scikit-learn's per-call input checks cost more than that product
for one record, and importing scikit-learn costs the service 170 MB (it imports pandas).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from scipy.special import softmax

from service.models.tree import node_aggregation


class LinearHead:
    """Softmax over target nodes from fitted weights; node probabilities sum down the tree."""

    def __init__(
        self,
        coef: np.ndarray,
        intercept: np.ndarray,
        classes: np.ndarray | list[str],
        temperature: float = 1.0,
    ) -> None:
        self.coef = np.ascontiguousarray(coef, dtype=np.float64)
        self.intercept = np.asarray(intercept, dtype=np.float64)
        self.classes_ = np.asarray(classes, dtype=object)
        self.temperature = float(temperature)
        self.n_features_in_ = int(self.coef.shape[1])
        self.nodes_, self.node_matrix_ = node_aggregation(self.classes_)

    @classmethod
    def from_estimator(cls, clf: Any) -> LinearHead:
        """The arrays of a fitted ``HierarchicalClassifier``."""
        est = clf.estimator_
        return cls(est.coef_, est.intercept_, clf.classes_, clf.temperature)

    def to_arrays(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Weights as arrays and the class list as JSON-ready values (no pickle needed)."""
        arrays = {"coef": self.coef, "intercept": self.intercept}
        return arrays, {"classes": [str(c) for c in self.classes_], "temperature": self.temperature}

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, np.ndarray], meta: Mapping[str, Any]) -> LinearHead:
        """The head :meth:`to_arrays` describes."""
        return cls(arrays["coef"], arrays["intercept"], list(meta["classes"]), meta["temperature"])

    def logits(self, X: Any) -> np.ndarray:
        """Softmax inputs, one column per class, for features built by the service itself."""
        if X.shape[1] != self.n_features_in_:
            raise ValueError(f"expected {self.n_features_in_} features, got {X.shape[1]}")
        scores = np.asarray(X @ self.coef.T, dtype=np.float64) + self.intercept
        if scores.shape[1] == 1:  # binary: one margin m is the softmax of (-m/2, m/2)
            return np.column_stack([-scores[:, 0] / 2.0, scores[:, 0] / 2.0])
        return scores

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities at the fitted temperature."""
        return np.asarray(softmax(self.logits(X) / self.temperature, axis=1))

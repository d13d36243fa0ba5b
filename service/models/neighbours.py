"""Nearest labelled examples: per class, the cosine similarity of the closest training record.

The linear head generalises across wordings; the nearest example catches the literal an
agency writes the same way as one we have labelled ("POSS CS W/I SELL" next to a crosswalked
"possession of controlled substance with intent to sell"). The predictor adds
``weight * similarity`` to the head's logits; leave-one-source-out, this is worth about
2.5 points of accuracy at every level (``iccs evaluate``, ablation "no nearest examples").
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np


class NearestExamples:
    """Best cosine similarity per class between a text and the labelled records of that class.

    Similarities are taken in the top ``dimensions`` principal directions of the training
    embeddings. Scoring one record reads the whole index from memory, so its size is the
    cost: 192 of 384 dimensions halve it (14 MB for 18,600 records, 1.1 -> 0.6 ms a record)
    at the same leave-one-source-out accuracy (pooled section 0.695 with 192 or 384; 0.691
    with 128).
    """

    def __init__(
        self,
        embeddings: np.ndarray,
        labels: Sequence[object] | np.ndarray,
        classes: Sequence[object] | np.ndarray,
        dimensions: int | None = 192,
    ) -> None:
        col = {str(c): i for i, c in enumerate(classes)}
        label_cols = np.array([col[str(lab)] for lab in labels], dtype=np.intp)
        order = np.argsort(label_cols, kind="stable")
        emb = np.asarray(embeddings, dtype=np.float64)
        self.mean: np.ndarray | None = None
        self.basis: np.ndarray | None = None
        if dimensions and dimensions < emb.shape[1] and len(emb) > dimensions:
            self.mean = emb.mean(axis=0)
            _, _, vt = np.linalg.svd(emb - self.mean, full_matrices=False)
            self.basis = np.ascontiguousarray(vt[:dimensions].T, dtype=np.float32)
        # Rows sorted by class, so one reduceat takes each class's maximum.
        self.embeddings = self.project(emb[order])
        sorted_cols = label_cols[order]
        self.starts = np.flatnonzero(np.r_[True, sorted_cols[1:] != sorted_cols[:-1]])
        self.present = sorted_cols[self.starts]
        self.n_classes = len(col)

    def to_arrays(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """The index as arrays (projection basis and mean only when it has them)."""
        arrays = {"embeddings": self.embeddings, "starts": self.starts, "present": self.present}
        if self.basis is not None and self.mean is not None:
            arrays.update(basis=self.basis, mean=self.mean)
        return arrays, {"n_classes": self.n_classes}

    @classmethod
    def from_arrays(
        cls, arrays: Mapping[str, np.ndarray], meta: Mapping[str, Any]
    ) -> NearestExamples:
        """The index :meth:`to_arrays` describes, as fitted (nothing is recomputed)."""
        index = cls.__new__(cls)
        index.embeddings = np.ascontiguousarray(arrays["embeddings"], dtype=np.float32)
        index.starts = np.asarray(arrays["starts"], dtype=np.intp)
        index.present = np.asarray(arrays["present"], dtype=np.intp)
        index.basis = arrays.get("basis")
        index.mean = arrays.get("mean")
        index.n_classes = int(meta["n_classes"])
        return index

    def scores(self, queries: np.ndarray) -> np.ndarray:
        """``(len(queries), n_classes)``: best similarity per class, 0 for classes without rows."""
        out = np.zeros((len(queries), self.n_classes), dtype=np.float64)
        if len(queries) == 0 or len(self.embeddings) == 0:
            return out
        sims = self.project(queries) @ self.embeddings.T
        out[:, self.present] = np.maximum.reduceat(sims, self.starts, axis=1)
        return out

    def project(self, x: np.ndarray) -> np.ndarray:
        """Unit-length rows in the index's space (the principal directions, if any).

        Reviewers' decided examples (:mod:`service.models.decided`) are compared in this same
        space, so their similarities and the training examples' are on one scale.
        """
        x = np.asarray(x, dtype=np.float32)
        basis, mean = self.basis, self.mean
        if basis is not None and mean is not None:
            x = (x - mean.astype(np.float32)) @ basis
            x = x / np.clip(np.linalg.norm(x, axis=1, keepdims=True), 1e-12, None)
        return np.ascontiguousarray(x, dtype=np.float32)

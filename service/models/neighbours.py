"""Nearest labelled examples: per class, the cosine similarity of the closest training record.

The linear head generalises across wordings; the nearest example catches the literal an
agency writes the same way as one we have labelled ("POSS CS W/I SELL" next to a crosswalked
"possession of controlled substance with intent to sell"). The predictor adds
``weight * similarity`` to the head's logits; leave-one-source-out, this is worth about
2.5 points of accuracy at every level (training/README figures, ``iccs evaluate``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


class NearestExamples:
    """Best cosine similarity per class between a text and the labelled records of that class.

    ``embeddings`` must be unit length (the encoder's output), so a dot product is a cosine.
    """

    def __init__(
        self,
        embeddings: np.ndarray,
        labels: Sequence[object] | np.ndarray,
        classes: Sequence[object] | np.ndarray,
    ) -> None:
        col = {str(c): i for i, c in enumerate(classes)}
        label_cols = np.array([col[str(lab)] for lab in labels], dtype=np.intp)
        order = np.argsort(label_cols, kind="stable")
        # Rows sorted by class, so one reduceat takes each class's maximum.
        self.embeddings = np.ascontiguousarray(embeddings[order], dtype=np.float32)
        sorted_cols = label_cols[order]
        self.starts = np.flatnonzero(np.r_[True, sorted_cols[1:] != sorted_cols[:-1]])
        self.present = sorted_cols[self.starts]
        self.n_classes = len(col)

    def scores(self, queries: np.ndarray) -> np.ndarray:
        """``(len(queries), n_classes)``: best similarity per class, 0 for classes without rows."""
        out = np.zeros((len(queries), self.n_classes), dtype=np.float64)
        if len(queries) == 0 or len(self.embeddings) == 0:
            return out
        sims = np.asarray(queries, dtype=np.float32) @ self.embeddings.T
        out[:, self.present] = np.maximum.reduceat(sims, self.starts, axis=1)
        return out

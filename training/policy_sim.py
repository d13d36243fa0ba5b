"""Replay the serving decision policy on held-out predictions (for honest coverage figures).

Thresholds for each fold come from the *other* folds' predictions, so the reported share
auto-coded and its precision are what a new jurisdiction would see.
"""

from __future__ import annotations

import numpy as np

from service.labels import NOT_AN_OFFENCE
from service.models.calibration import PrecisionCurve
from service.models.hierarchy import node_aggregation
from service.models.policy import AUTO, decide
from service.taxonomy import load_taxonomy
from training.head import level_outcomes


def decisions(
    proba: np.ndarray, classes: np.ndarray, thresholds: dict[int, float]
) -> list[str | None]:
    """Assigned code (or None) per row under the serving policy."""
    tax = load_taxonomy()
    nodes, matrix = node_aggregation(classes)
    idx = {n: i for i, n in enumerate(nodes)}
    node_p = proba @ matrix
    cls = [str(c) for c in classes]
    na = cls.index(NOT_AN_OFFENCE) if NOT_AN_OFFENCE in cls else -1
    offence_cols = np.array([i for i, c in enumerate(cls) if c != NOT_AN_OFFENCE])
    out: list[str | None] = []
    for r in range(len(proba)):
        top = cls[offence_cols[np.argmax(proba[r, offence_cols])]]
        path_conf = {c: float(node_p[r, idx[c]]) for c in tax.path(top)}
        d = decide(top, path_conf, float(proba[r, na]) if na >= 0 else 0.0, thresholds)
        out.append(d.assigned if d.status == AUTO else None)
    return out


def cross_fitted_decisions(
    proba: np.ndarray,
    classes: np.ndarray,
    truth: np.ndarray,
    folds: np.ndarray,
    precision: float,
) -> list[str | None]:
    """Policy decisions where each fold's thresholds were derived without that fold."""
    out: list[str | None] = [None] * len(proba)
    for fold in sorted(set(folds)):
        inside = np.flatnonzero(folds == fold)
        outside = np.flatnonzero(folds != fold)
        if len(outside) == 0:
            outside = inside
        oc = level_outcomes(proba[outside], classes, truth[outside])
        thresholds = {
            lvl: PrecisionCurve.from_predictions(oc.conf[lvl], oc.correct[lvl]).threshold_for(
                precision
            )
            for lvl in (2, 3, 4)
            if len(oc.conf[lvl])
        }
        for r, a in zip(inside, decisions(proba[inside], classes, thresholds), strict=True):
            out[r] = a
    return out

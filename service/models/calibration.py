"""Calibration: temperature scaling, expected calibration error, precision thresholds.

Thresholds come from held-out predictions: for each ICCS level, the confidences of the
top suggestion's ancestor at that level and whether it was right. ``threshold_for`` turns
any target precision into the lowest confidence whose auto-coded set reaches it, so an
operator or a request can ask for another precision without retraining.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypedDict

import numpy as np
from scipy.special import log_softmax

# Below this many auto-coded calibration records a precision estimate is noise.
MIN_SUPPORT = 20


def fit_temperature(logits: np.ndarray, y_index: np.ndarray) -> float:
    """Temperature that minimises the negative log-likelihood of held-out labels."""
    from scipy.optimize import minimize_scalar  # training only; the service never fits

    def nll(log_t: float) -> float:
        lp = log_softmax(logits / np.exp(log_t), axis=1)
        return float(-lp[np.arange(len(y_index)), y_index].mean())

    res = minimize_scalar(nll, bounds=(np.log(0.05), np.log(20.0)), method="bounded")
    return float(np.exp(res.x))


def expected_calibration_error(conf: np.ndarray, correct: np.ndarray, bins: int = 15) -> float:
    """ECE with equal-width bins: mean |accuracy - confidence| weighted by bin size."""
    conf = np.asarray(conf, dtype=float)
    correct = np.asarray(correct, dtype=float)
    if conf.size == 0:
        return 0.0
    edges = np.linspace(0.0, 1.0, bins + 1)
    idx = np.clip(np.digitize(conf, edges[1:-1]), 0, bins - 1)
    ece = 0.0
    for b in range(bins):
        sel = idx == b
        if sel.any():
            ece += sel.mean() * abs(correct[sel].mean() - conf[sel].mean())
    return float(ece)


class CurveDict(TypedDict):
    """A :class:`PrecisionCurve` as the manifest stores it."""

    confidences: list[float]
    precisions: list[float]
    n: int


@dataclass
class PrecisionCurve:
    """Confidence -> precision of everything at or above it, for one level."""

    confidences: list[float]  # descending
    precisions: list[float]  # precision of the records with confidence >= confidences[i]
    n: int

    @classmethod
    def from_predictions(cls, conf: np.ndarray, correct: np.ndarray) -> PrecisionCurve:
        """Curve from held-out (confidence, correct) pairs, thinned to at most 200 points."""
        order = np.argsort(-np.asarray(conf, dtype=float), kind="stable")
        c = np.asarray(conf, dtype=float)[order]
        ok = np.asarray(correct, dtype=float)[order]
        prec = np.cumsum(ok) / np.arange(1, len(ok) + 1)
        keep = np.unique(np.linspace(0, len(c) - 1, num=min(200, len(c))).astype(int))
        return cls([float(x) for x in c[keep]], [float(x) for x in prec[keep]], int(len(c)))

    def threshold_for(self, precision: float) -> float:
        """Lowest confidence whose auto-coded set still reaches ``precision``.

        Returns a value above 1 (never auto-code) when no supported point reaches it.
        """
        best = 1.01
        for i, (c, p) in enumerate(zip(self.confidences, self.precisions, strict=True)):
            support = (i + 1) * self.n / max(len(self.confidences), 1)
            if p >= precision and support >= min(MIN_SUPPORT, self.n):
                best = c
        return float(best)

    def to_dict(self) -> CurveDict:
        """JSON-ready form for the manifest."""
        return {"confidences": self.confidences, "precisions": self.precisions, "n": self.n}

    @classmethod
    def from_dict(cls, d: CurveDict) -> PrecisionCurve:
        """Inverse of :meth:`to_dict`."""
        return cls(list(d["confidences"]), list(d["precisions"]), int(d["n"]))


def effective_target(target_map: list[list[float]] | None, precision: float) -> float:
    """The effective target for ``precision`` (interpolated; itself without a map)."""
    if not target_map:
        return precision
    ps = [p for p, _ in target_map]
    es = [e for _, e in target_map]
    if precision > ps[-1]:
        return max(precision, es[-1])
    return float(max(precision, np.interp(precision, ps, es)))

"""Evaluation metrics per ICCS level, weighted and unweighted, and the coverage curve."""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np
from sklearn.metrics import accuracy_score, f1_score

from service.labels import NOT_AN_OFFENCE
from service.taxonomy import ancestor_at, level_of
from training.head import NA

LEVELS = {1: "section", 2: "division", 3: "group", 4: "exact"}


def _at_level(code: str, level: int) -> str | None:
    if code in (NA, NOT_AN_OFFENCE):
        return NA
    if level == 4:
        return code
    return ancestor_at(code, level) if level_of(code) >= level else None


def level_metrics(pred: np.ndarray, truth: np.ndarray) -> dict[str, dict[str, float]]:
    """Accuracy, macro-F1 (unweighted over categories) and weighted F1 at each level.

    At the section, division and group levels only rows whose truth is that deep count;
    ``exact`` compares full codes on every row. Non-offences are one category ("NA").
    """
    out: dict[str, dict[str, float]] = {}
    for level, name in LEVELS.items():
        pairs = [
            (_at_level(p, level) or p, t2)
            for p, t in zip(pred, truth, strict=True)
            if (t2 := _at_level(t, level)) is not None
        ]
        if not pairs:
            continue
        p_l, t_l = zip(*pairs, strict=True)
        out[name] = {
            "n": len(pairs),
            "accuracy": float(accuracy_score(t_l, p_l)),
            "macro_f1": float(
                f1_score(t_l, p_l, average="macro", labels=sorted(set(t_l)), zero_division=0)
            ),
            "weighted_f1": float(f1_score(t_l, p_l, average="weighted", zero_division=0)),
        }
    return out


def by_group_metrics(pred: np.ndarray, truth: np.ndarray, groups: np.ndarray) -> dict[str, Any]:
    """Metrics per source, plus the pooled figures and the unweighted mean over sources."""
    per = {g: level_metrics(pred[groups == g], truth[groups == g]) for g in sorted(set(groups))}
    pooled = level_metrics(pred, truth)
    mean: dict[str, dict[str, float]] = {}
    for name in LEVELS.values():
        vals = [m[name] for m in per.values() if name in m]
        if vals:
            mean[name] = {
                k: float(np.mean([v[k] for v in vals]))
                for k in ("accuracy", "macro_f1", "weighted_f1")
            }
    return {
        "pooled_weighted_by_rows": pooled,
        "unweighted_mean_over_sources": mean,
        "per_source": per,
    }


def section_confusion(pred: np.ndarray, truth: np.ndarray) -> dict[str, dict[str, int]]:
    """Counts of true section -> predicted section (NA = not an offence)."""
    out: dict[str, Counter[str]] = {}
    for p, t in zip(pred, truth, strict=True):
        out.setdefault(_at_level(t, 1) or "?", Counter())[_at_level(p, 1) or "?"] += 1
    return {k: dict(v) for k, v in sorted(out.items())}


def worst_categories(
    pred: np.ndarray, truth: np.ndarray, min_support: int = 5, n: int = 15
) -> list[dict[str, Any]]:
    """Exact-code categories with the lowest F1 among those with enough support."""
    labels = [c for c, k in Counter(truth).items() if k >= min_support]
    if not labels:
        return []
    f1 = f1_score(truth, pred, labels=labels, average=None, zero_division=0)
    support = Counter(truth)
    rows = sorted(zip(labels, f1, strict=True), key=lambda x: x[1])[:n]
    return [{"code": c, "f1": round(float(s), 3), "support": support[c]} for c, s in rows]


def policy_outcome(assigned: list[str | None], truth: np.ndarray) -> dict[str, float]:
    """Share auto-coded and precision of what was auto-coded (back-off codes count as right
    when they are an ancestor of, or equal to, the true code)."""
    auto = [(a, t) for a, t in zip(assigned, truth, strict=True) if a]
    if not auto:
        return {"coverage": 0.0, "precision": 1.0, "n_auto": 0}
    ok = sum(
        1
        for a, t in auto
        if t != NOT_AN_OFFENCE and str(t).startswith(a) and level_of(t) >= level_of(a)
    )
    return {"coverage": len(auto) / len(truth), "precision": ok / len(auto), "n_auto": len(auto)}

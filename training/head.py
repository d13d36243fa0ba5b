"""Fit the hierarchical head, predict out of fold, calibrate, derive thresholds."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.special import softmax
from sklearn.decomposition import TruncatedSVD
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.model_selection import StratifiedKFold

from service.labels import NOT_AN_OFFENCE
from service.models.calibration import (
    PrecisionCurve,
    expected_calibration_error,
    fit_temperature,
)
from service.models.hierarchy import HierarchicalClassifier
from service.models.linear_head import LinearHead
from service.models.neighbours import NearestExamples
from service.models.ngrams import CharNgrams
from service.models.policy import REJECT_PROBABILITY, ClassColumns, rejects
from service.models.predictor import FeatureBuilder, Scorer
from service.models.tree import node_aggregation
from service.taxonomy import ancestor_at, level_of
from training.config import TrainConfig

log = logging.getLogger(__name__)
NA = "NA"  # the non-offence "section" in evaluation


def fit_head(texts: list[str], emb: np.ndarray, labels: np.ndarray, cfg: TrainConfig) -> Scorer:
    """Fit the n-gram vectoriser (optional), the classifier and the nearest-example index.

    The result holds scikit-learn-free copies (:class:`CharNgrams`, :class:`LinearHead`), the
    objects the service loads, so out-of-fold scores come from the same code as served ones.
    """
    ngrams = projection = None
    if cfg.char_ngrams:
        vectorizer = TfidfVectorizer(
            analyzer="char_wb",
            ngram_range=tuple(cfg.ngram_range),
            max_features=cfg.max_features,
            sublinear_tf=True,
            dtype=np.float32,
        )
        grams = vectorizer.fit_transform(texts)
        vectorizer.stop_words_ = None  # every n-gram cut by max_features: not needed after fit
        ngrams = CharNgrams.from_vectorizer(vectorizer)
        if cfg.ngram_components:
            k = min(cfg.ngram_components, grams.shape[1] - 1, len(texts) - 1)
            reducer = TruncatedSVD(n_components=k, random_state=cfg.seed).fit(grams)
            projection = FeatureBuilder.projection_of(reducer)
    features = FeatureBuilder(ngrams, cfg.embedding_weight, projection)
    clf = HierarchicalClassifier(C=cfg.C, max_iter=cfg.max_iter, tol=cfg.tol)
    clf.fit(features.transform(texts, emb), labels)
    neighbours = NearestExamples(emb, labels, clf.classes_) if cfg.neighbour_weight else None
    return Scorer(features, LinearHead.from_estimator(clf), neighbours, cfg.neighbour_weight)


HANDWRITTEN_FOLD = "hw-fold"


def held_out_groups(groups: Iterable[str], cfg: TrainConfig) -> dict[str, str]:
    """Split group -> fold: the national lists (``calibration_folds``) and, when
    ``handwritten_folds`` is set, the hand-written ``hw-<language>-<origin>`` groups.

    Each language's origins go round-robin over the hand-written folds, so a held-out origin
    is predicted by a head that saw the same language written by the other origins. With
    ``handwritten_fold_rotation`` each language starts its round at its own fold, so the
    other languages' rows of the same style (say, narratives) stay in training.
    """
    out = dict(cfg.calibration_folds)
    if cfg.handwritten_folds:
        by_lang: dict[str, list[str]] = {}
        for g in sorted(set(groups)):
            parts = g.split("-")
            if len(parts) >= 3 and parts[0] == "hw":
                by_lang.setdefault(parts[1], []).append(g)
        for k, names in enumerate(by_lang[lang] for lang in sorted(by_lang)):
            start = k if cfg.handwritten_fold_rotation else 0
            for i, g in enumerate(names):
                out[g] = f"{HANDWRITTEN_FOLD}{(start + i) % cfg.handwritten_folds}"
    return out


def calibration_rows(folds: np.ndarray) -> np.ndarray:
    """``folds`` with the hand-written folds blanked: calibration, thresholds and the headline
    figures come from the national lists, real agencies' wording."""
    return np.array(["" if str(f).startswith(HANDWRITTEN_FOLD) else f for f in folds], dtype=object)


def fold_assignment(groups: np.ndarray, labels: np.ndarray, cfg: TrainConfig) -> np.ndarray:
    """Fold name per row ("" = always in training).

    With national lists present, each fold holds out whole jurisdictions, so the calibration
    data are predictions on jurisdictions the head never saw. Without them (quick config)
    fall back to 3 stratified folds.
    """
    national = np.array([cfg.calibration_folds.get(g, "") for g in groups], dtype=object)
    if (national != "").any():
        mapping = held_out_groups(groups, cfg)
        return np.array([mapping.get(g, "") for g in groups], dtype=object)
    counts = {c: n for c, n in zip(*np.unique(labels, return_counts=True), strict=True)}
    strat = np.array([lab if counts[lab] >= 3 else "_rare" for lab in labels])
    skf = StratifiedKFold(n_splits=3, shuffle=True, random_state=cfg.seed)
    out = np.array([""] * len(labels), dtype=object)
    for k, (_, test) in enumerate(skf.split(np.zeros(len(labels)), strat)):
        out[test] = f"fold{k}"
    return out


def out_of_fold_logits(
    texts: list[str],
    emb: np.ndarray,
    labels: np.ndarray,
    folds: np.ndarray,
    classes: np.ndarray,
    cfg: TrainConfig,
) -> np.ndarray:
    """Logits over ``classes`` for every row in a fold, from a head that never saw its fold.

    Classes absent from a fold's training data get -inf (probability zero).
    """
    out = np.full((len(texts), len(classes)), -np.inf)
    col = {c: i for i, c in enumerate(classes)}
    for fold in sorted(set(folds) - {""}):
        test = np.flatnonzero(folds == fold)
        train = np.flatnonzero(folds != fold)
        scorer = fit_head([texts[i] for i in train], emb[train], labels[train], cfg)
        logits = scorer.logits([texts[i] for i in test], emb[test])
        cols = np.array([col[c] for c in scorer.head.classes_], dtype=np.intp)
        out[np.ix_(test, cols)] = logits
        log.info("out-of-fold %s: %d rows, trained on %d", fold, len(test), len(train))
    return out


def top_codes(proba: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """Predicted label per row: NA when the policy rejects it as not an offence, else the
    top offence code (the serving policy's choice, :class:`ClassColumns`)."""
    columns = ClassColumns(classes)
    top = np.array([columns.classes[i] for i in columns.top_offence(proba)], dtype=object)
    top[rejects(columns.non_offence_probability(proba))] = NA
    return top


@dataclass
class LevelOutcomes:
    """Per level: confidence of the top code's ancestor and whether it was right."""

    conf: dict[int, np.ndarray]
    correct: dict[int, np.ndarray]


def level_outcomes(proba: np.ndarray, classes: np.ndarray, truth: np.ndarray) -> LevelOutcomes:
    """What auto-coding at each level would give on labelled rows.

    A prediction at level L is right when the truth is at least that deep and shares the
    ancestor; auto-coding a non-offence is always wrong.
    """
    nodes, matrix = node_aggregation(classes)
    node_idx = {n: i for i, n in enumerate(nodes)}
    node_p = proba @ matrix
    top = top_codes(proba, classes)
    conf: dict[int, list[float]] = {2: [], 3: [], 4: []}
    correct: dict[int, list[bool]] = {2: [], 3: [], 4: []}
    for r, (pred, true) in enumerate(zip(top, truth, strict=True)):
        if pred == NA:
            continue
        for lvl in (2, 3, 4):
            if level_of(pred) < lvl:
                continue
            anc = ancestor_at(pred, lvl)
            conf[lvl].append(float(node_p[r, node_idx[anc]]))
            ok = true != NOT_AN_OFFENCE and level_of(true) >= lvl and ancestor_at(true, lvl) == anc
            correct[lvl].append(bool(ok))
    return LevelOutcomes(
        {k: np.array(v) for k, v in conf.items()}, {k: np.array(v) for k, v in correct.items()}
    )


def _top1(
    proba: np.ndarray, classes: np.ndarray, truth: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    top = top_codes(proba, classes)
    columns = ClassColumns(classes)
    best_offence = proba[np.arange(len(proba)), columns.top_offence(proba)]
    conf = np.where(top == NA, columns.non_offence_probability(proba), best_offence)
    t = np.where(truth == NOT_AN_OFFENCE, NA, truth)
    return conf, (top == t)


def calibrate(
    logits: np.ndarray,
    classes: np.ndarray,
    truth: np.ndarray,
    folds: np.ndarray,
    cfg: TrainConfig,
) -> dict[str, Any]:
    """Temperature, precision curves per level, thresholds at the target, ECE before/after.

    ECE after calibration is cross-validated over folds: each fold is scored with the
    temperature fitted on the other folds, so the reported figure is not in-sample.
    """
    rows = np.flatnonzero(folds != "")
    col = {c: i for i, c in enumerate(classes)}
    known = np.array([truth[r] in col for r in rows])
    rows = rows[known]
    y_idx = np.array([col[truth[r]] for r in rows])
    lg, tr, fd = logits[rows], truth[rows], folds[rows]
    temperature = fit_temperature(lg, y_idx)
    conf_before, ok_before = _top1(softmax(lg, axis=1), classes, tr)
    cv_conf = np.empty(len(rows))
    for fold in sorted(set(fd)):
        inside = fd == fold
        t_fold = fit_temperature(lg[~inside], y_idx[~inside]) if (~inside).any() else temperature
        cv_conf[inside], _ = _top1(softmax(lg[inside] / t_fold, axis=1), classes, tr[inside])
    proba = softmax(lg / temperature, axis=1)
    outcomes = level_outcomes(proba, classes, tr)
    curves = {
        lvl: PrecisionCurve.from_predictions(outcomes.conf[lvl], outcomes.correct[lvl])
        for lvl in (2, 3, 4)
        if len(outcomes.conf[lvl])
    }
    per_level_ece = {
        str(lvl): expected_calibration_error(outcomes.conf[lvl], outcomes.correct[lvl])
        for lvl in curves
    }
    # Rejecting a record as not an offence is a decision too: its curve (P(not an offence) ->
    # share truly not an offence) sets where the service may reject (Thresholds.reject_at).
    non_offence = PrecisionCurve.from_predictions(
        ClassColumns(classes).non_offence_probability(proba), tr == NOT_AN_OFFENCE
    )
    result = {
        "method": "temperature",
        "temperature": temperature,
        "rows": int(len(rows)),
        "ece_top1_before": expected_calibration_error(conf_before, ok_before),
        "ece_top1_after": expected_calibration_error(cv_conf, ok_before),
        "ece_per_level_after": per_level_ece,
        "curves": {str(k): v.to_dict() for k, v in curves.items()},
        "thresholds": {str(k): v.threshold_for(cfg.target_precision) for k, v in curves.items()},
        "non_offence_curve": non_offence.to_dict(),
        "reject_threshold": max(
            REJECT_PROBABILITY, non_offence.threshold_for(cfg.target_precision)
        ),
    }
    log.info(
        "calibration: T=%.3f ECE %.4f -> %.4f",
        temperature,
        result["ece_top1_before"],
        result["ece_top1_after"],
    )
    return result

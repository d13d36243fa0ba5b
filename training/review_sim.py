"""Simulated review of a new national list: how many human decisions code all of it?

An office adopting ICCS codes its national list once (the correspondence table). Replayed
here for each held-out source (leave one source out) with an oracle reviewer who answers
with the gold label:

1. the model auto-codes an entry when the confidence of its top code clears a threshold
   learnt on the *other* sources for the target precision;
2. a reviewer decides the pending entries one at a time, in queue order;
3. each decision joins the model's nearest-example component at once, as in the service
   (learning): per class, the similarity the scorer adds to the head's logits becomes the
   best of the similarity to the training examples of that class and to the decided entries
   of that class. Pending entries are re-scored with the fold's own head logits, weight and
   temperature (:class:`ScoreParts`) and auto-coded when their top confidence clears the
   ``learn`` threshold (the model's, by default);
4. optionally (carry-over), pending entries close enough to the decided one (cosine similarity
   of their embeddings) take its code when the similarity clears a threshold learnt on the
   other sources for the same target: one threshold when the decided code equals the entry's
   own top suggestion, a stricter one when it overrides it.

Queue orders compared on the same state:
- ``confidence``: least confident first (uncertainty sampling, what peers do);
- ``random``: arbitrary order;
- ``value``: expected number of entries a decision codes (itself plus the pending entries it
  would code if the decided code went their way, weighted by the model's probability of that
  code), times the entry's uncertainty, the least confident first among equals.

Only human decisions teach (never an auto-code), so an error cannot spread through a chain.
An entry is coded when it has its full code (the label's own depth), so the figures are for a
correspondence table, not for the back-off policy.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.special import logsumexp, softmax
from scipy.stats import beta

log = logging.getLogger(__name__)

ORDERS = ("confidence", "random", "value")
# Effective targets tried, from the target up: the least strict one that holds across the
# other sources (each scored with thresholds learnt without it) is used.
_GRID = np.round(np.arange(0.0, 0.0296, 0.0025), 4)
# Below this many supporting rows a precision estimate is noise (as in calibration).
MIN_SUPPORT = 20
# The carry-over thresholds are learnt on each entry's nearest entries of its own list
# (a decision reaches an entry through its nearest decided neighbour).
NEIGHBOURS = 10


@dataclass(frozen=True)
class Rules:
    """Thresholds learnt without the list being simulated (above 1: never)."""

    model: float  # top-code confidence at or above which the model auto-codes
    carry_same: float  # similarity at which a decision carries to an entry whose top it is
    carry_other: float  # similarity at which a decision overrides an entry's top suggestion
    learn: float = 1.01  # re-scored top confidence at which a decision's neighbour is coded


@dataclass
class ScoreParts:
    """The fold scorer's pieces for the rows of one list: logits = head + weight * similarity,
    probabilities = softmax(logits / temperature) (service/models/predictor.py ``Scorer``)."""

    head: np.ndarray  # (n, K) head logits without the neighbour term (-inf: class not in fold)
    train_sim: np.ndarray  # (n, K) best similarity to the fold's training examples per class
    emb: np.ndarray  # (n, d) unit rows in the space of the fold's nearest-example index
    weight: float
    temperature: float
    # Extra weight on a decided entry's similarity where it beats the training examples'
    # (decisions of the same list say more than training rows of other lists).
    decided_weight: float = 0.0

    def proba(self, sim: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
        """Probabilities of ``rows`` (all by default) with per-class similarities ``sim`` (the
        better of training and decided examples)."""
        head = self.head if rows is None else self.head[rows]
        train = self.train_sim if rows is None else self.train_sim[rows]
        logits = head + self.weight * sim + self.decided_weight * (sim - train)
        return np.asarray(softmax(logits / self.temperature, axis=1))

    def subset(self, rows: np.ndarray) -> ScoreParts:
        """The pieces of some rows."""
        return ScoreParts(
            self.head[rows],
            self.train_sim[rows],
            self.emb[rows],
            self.weight,
            self.temperature,
            self.decided_weight,
        )


@dataclass
class SourceData:
    """One held-out list: out-of-fold probabilities, gold codes, unit-norm embeddings, and
    the scorer's pieces when a decision should join the nearest-example component."""

    proba: np.ndarray
    truth: np.ndarray
    emb: np.ndarray
    parts: ScoreParts | None = None
    top: np.ndarray = field(init=False)
    conf: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.top = np.argmax(self.proba, axis=1)
        self.conf = self.proba[np.arange(len(self.proba)), self.top]

    @classmethod
    def from_parts(
        cls, parts: ScoreParts, truth: np.ndarray, emb: np.ndarray | None = None
    ) -> SourceData:
        """A list scored by its pieces (``emb``: the carry-over's embeddings, by default the
        nearest-example index's)."""
        return cls(parts.proba(parts.train_sim), truth, parts.emb if emb is None else emb, parts)


def gold_index(truth: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """Column of each gold label among ``classes`` (-1: a label the model lacks)."""
    col = {c: k for k, c in enumerate(classes)}
    return np.array([col.get(t, -1) for t in truth], dtype=np.intp)


def unit_rows(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (cosine similarity becomes a dot product)."""
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norms > 0, norms, 1.0)


def threshold_for(scores: np.ndarray, correct: np.ndarray, target: float) -> float:
    """Lowest score whose set (all rows scoring at least it) reaches ``target`` precision
    with at least MIN_SUPPORT rows; above 1 (never) when none does."""
    order = np.argsort(-scores, kind="stable")
    s, ok = scores[order], correct[order].astype(float)
    prec = np.cumsum(ok) / np.arange(1, len(ok) + 1)
    # Only the last of tied scores is a possible cut: a threshold takes all its ties.
    last_of_ties = np.r_[s[1:] != s[:-1], True]
    support = np.arange(1, len(ok) + 1) >= MIN_SUPPORT
    good = np.flatnonzero((prec >= target) & support & last_of_ties)
    return float(s[good[-1]]) if len(good) else 1.01


def _nested_threshold(
    scores: np.ndarray, correct: np.ndarray, groups: np.ndarray, target: float
) -> float:
    """Threshold at the least strict effective target that reaches ``target`` when each
    group is scored with a threshold learnt on the others (pooled), learnt on all groups."""
    names = sorted(set(groups))
    for bump in _GRID:
        eff = min(target + bump, 0.999)
        auto = right = 0
        for g in names:
            inside, outside = groups == g, groups != g
            if not outside.any():
                continue
            th = threshold_for(scores[outside], correct[outside], eff)
            sel = inside & (scores >= th)
            auto += int(sel.sum())
            right += int(correct[sel].sum())
        if auto == 0 or right / auto >= target:
            return threshold_for(scores, correct, eff)
    return threshold_for(scores, correct, min(target + _GRID[-1], 0.999))


def budget_threshold(scores: np.ndarray, correct: np.ndarray, budget: float) -> float:
    """Lowest score whose set (all rows scoring at least it) holds at most ``budget`` x all
    rows wrong codes, with at least MIN_SUPPORT rows; above 1 (never) when none does."""
    order = np.argsort(-scores, kind="stable")
    s, bad = scores[order], ~correct[order].astype(bool)
    errors = np.cumsum(bad)
    last_of_ties = np.r_[s[1:] != s[:-1], True]
    support = np.arange(1, len(s) + 1) >= MIN_SUPPORT
    good = np.flatnonzero((errors <= budget * len(s)) & support & last_of_ties)
    return float(s[good[-1]]) if len(good) else 1.01


def _nested_budget_threshold(
    scores: np.ndarray, correct: np.ndarray, groups: np.ndarray, budget: float
) -> float:
    """:func:`budget_threshold` at the least strict effective budget whose errors, each group
    scored with a threshold learnt on the others, stay within ``budget`` of all rows pooled."""
    names = sorted(set(groups))
    for cut in _GRID:
        eff = max(budget - cut, 0.0)
        wrong = 0
        for g in names:
            inside, outside = groups == g, groups != g
            if not outside.any():
                continue
            th = budget_threshold(scores[outside], correct[outside], eff)
            wrong += int((inside & (scores >= th) & ~correct.astype(bool)).sum())
        if wrong <= budget * len(scores):
            return budget_threshold(scores, correct, eff)
    return budget_threshold(scores, correct, max(budget - _GRID[-1], 0.0))


def _neighbour_pairs(emb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(i, j, similarity) for each entry j and its NEIGHBOURS nearest other entries i."""
    sim = emb @ emb.T
    np.fill_diagonal(sim, -np.inf)
    k = min(NEIGHBOURS, len(emb) - 1)
    if k <= 0:
        return np.zeros(0, int), np.zeros(0, int), np.zeros(0)
    i = np.argpartition(-sim, k - 1, axis=0)[:k]  # column j: its k nearest rows
    j = np.broadcast_to(np.arange(len(emb)), i.shape)
    return i.ravel(), j.ravel(), sim[i, j].ravel()


LEARN_RULES = ("model", "context", "off")
# What the target precision is of: every machine-made code (``codes``), or the finished
# correspondence table (``table``: the reviewed entries are right, so the model may code
# entries, at the start and as decisions re-score them, down to the confidence at which its
# wrong codes on the other lists fill the table's error budget, less a reserve for the codes
# decisions make later).
POLICIES = ("codes", "table")
# Share of the list kept out of the table policy's error budget for the codes decisions make
# (re-scored, carried): 0.0075 held the pooled table at 0.97 on the seven national lists where
# 0.005 and 0 did not (0.968, 0.967); chosen on those lists, so not an independent figure.
TABLE_RESERVE = 0.0075


def _table_budget_threshold(
    conf: np.ndarray, right: np.ndarray, groups: np.ndarray, target: float
) -> float:
    """The confidence down to which the model may code a list whose finished table must be
    right at ``target``: its wrong codes on the other lists stay within the error budget."""
    return _nested_budget_threshold(conf, right, groups, max(1.0 - target - TABLE_RESERVE, 0.0))


# Table targets the service can be asked for (``table_thresholds`` in an entry's manifest).
TABLE_TARGETS = tuple(round(float(t), 2) for t in np.arange(0.80, 0.995, 0.01))


def table_thresholds(
    proba: np.ndarray, classes: np.ndarray, truth: np.ndarray, folds: np.ndarray
) -> list[list[float]]:
    """[target, threshold] for each of :data:`TABLE_TARGETS`, learnt on the held-out lists'
    out-of-fold probabilities as the simulation's table policy learns them (nested over the
    lists, never laxer than the threshold for every code at the target): serving auto-codes
    an entry of a list coded as a table when its top confidence reaches the threshold."""
    top = np.argmax(proba, axis=1)
    conf = proba[np.arange(len(top)), top]
    right = classes[top] == truth
    found = [
        min(
            _nested_threshold(conf, right, folds, t), _table_budget_threshold(conf, right, folds, t)
        )
        for t in TABLE_TARGETS
    ]
    # A stricter target never codes more (nested estimates can wobble by a tie or two).
    rising = np.maximum.accumulate(found)
    return [[t, round(float(th), 6)] for t, th in zip(TABLE_TARGETS, rising, strict=True)]


def table_precision_by_held_out_source(
    proba: np.ndarray,
    classes: np.ndarray,
    truth: np.ndarray,
    folds: np.ndarray,
    targets: tuple[float, ...] = (0.90, 0.95, 0.97),
) -> dict[str, dict[str, dict[str, float]]]:
    """For each held-out list and table target: the share the model codes at the table
    threshold learnt without that list (nested, as serving would meet a new list), how many
    of those codes are right, and the precision of the finished table once reviewers, whom
    this takes as right, decide the rest."""
    top = np.argmax(proba, axis=1)
    conf = proba[np.arange(len(top)), top]
    right = classes[top] == truth
    out: dict[str, dict[str, dict[str, float]]] = {}
    pooled = {t: [0, 0, 0] for t in targets}
    for fold in sorted(set(folds)):
        inside, others = folds == fold, folds != fold
        found = table_thresholds(proba[others], classes, truth[others], folds[others])
        at = dict((t, th) for t, th in found)
        out[fold] = {}
        for t in targets:
            coded = inside & (conf >= at[round(t, 2)])
            n, auto, wrong = int(inside.sum()), int(coded.sum()), int((coded & ~right).sum())
            for k, v in enumerate((n, auto, wrong)):
                pooled[t][k] += v
            out[fold][f"{t:.2f}"] = _table_rates(n, auto, wrong) | {"threshold": at[round(t, 2)]}
    out["pooled"] = {f"{t:.2f}": _table_rates(*pooled[t]) for t in targets}
    return out


def _table_rates(n: int, auto: int, wrong: int) -> dict[str, float]:
    return {
        "rows": n,
        "auto_coded": round(auto / n, 4) if n else 0.0,
        "auto_precision": round(1 - wrong / auto, 4) if auto else 1.0,
        "table_precision": round(1 - wrong / n, 4) if n else 1.0,
    }


def context_confidence(data: SourceData, classes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(top confidence, top is right) of each entry once every other entry of its list is
    decided: per class, the best of the training and the decided entries' similarity."""
    assert data.parts is not None
    p, gold = data.parts, gold_index(data.truth, classes)
    sim = p.train_sim.astype(np.float64)
    known = np.flatnonzero(gold >= 0)
    if len(known) > 1:
        pair = (p.emb @ p.emb[known].T).astype(np.float64)
        pair[known, np.arange(len(known))] = -np.inf  # not itself
        order = np.argsort(gold[known], kind="stable")
        g = gold[known][order]
        starts = np.flatnonzero(np.r_[True, g[1:] != g[:-1]])
        best = np.maximum.reduceat(pair[:, order], starts, axis=1)
        sim[:, g[starts]] = np.maximum(sim[:, g[starts]], best)
    proba = p.proba(sim)
    top = np.argmax(proba, axis=1)
    return proba[np.arange(len(top)), top], top == gold


def budget_cover(conf: np.ndarray, right: np.ndarray, budget: int | float) -> int:
    """Entries in the largest top-confidence set whose wrong codes number at most ``budget``
    (the best threshold in hindsight; ties go in together)."""
    order = np.argsort(-conf, kind="stable")
    c, errors = conf[order], np.cumsum(~right[order].astype(bool))
    last_of_ties = np.r_[c[1:] != c[:-1], True] if len(c) else np.zeros(0, bool)
    good = np.flatnonzero((errors <= budget) & last_of_ties)
    return int(good[-1] + 1) if len(good) else 0


def table_ceiling(data: SourceData, classes: np.ndarray, target: float) -> dict[str, float]:
    """The most of a list this scorer could code in a table right at ``target``, whatever
    the queue order or the thresholds: the entries above the best confidence threshold in
    hindsight whose wrong codes fit the table's error budget, with the model alone and with
    every other entry of the list decided (the most evidence decisions can bring). What
    decisions it leaves (1 - machine share) is a floor for the simulation's mechanisms."""
    n = len(data.truth)
    if n == 0:
        return {"rows": 0, "machine_at_start": 0.0}
    budget = (1.0 - target) * n
    right_at_start = classes[data.top] == data.truth
    out = {
        "rows": n,
        "machine_at_start": round(budget_cover(data.conf, right_at_start, budget) / n, 4),
        "right_at_start": round(float(right_at_start.mean()), 4),
    }
    if n > 1:
        # How often an entry's nearest entry of its own list has its code: what a decision
        # on the one can teach about the other.
        sim = data.emb @ data.emb.T
        np.fill_diagonal(sim, -np.inf)
        nearest = np.argmax(sim, axis=1)
        out["nearest_shares_code"] = round(float((data.truth[nearest] == data.truth).mean()), 4)
    if data.parts is not None:
        conf, right = context_confidence(data, classes)
        out["machine_all_others_decided"] = round(budget_cover(conf, right, budget) / n, 4)
        out["right_all_others_decided"] = round(float(right.mean()), 4)
    return out


def pool_ceilings(ceilings: list[dict[str, float]]) -> dict[str, float]:
    """Row-weighted pooled ceilings of several lists."""
    rows = sum(int(c["rows"]) for c in ceilings)
    out: dict[str, float] = {"rows": rows}
    for key in (
        "machine_at_start",
        "machine_all_others_decided",
        "right_at_start",
        "right_all_others_decided",
        "nearest_shares_code",
    ):
        if rows and all(key in c for c in ceilings):
            out[key] = round(sum(c[key] * c["rows"] for c in ceilings) / rows, 4)
    return out


def fit_rules(
    sources: dict[str, SourceData],
    classes: np.ndarray,
    target: float,
    learn: str = "model",
    carry: bool = True,
    policy: str = "codes",
) -> Rules:
    """Rules from the given (other) sources, nested over them so they hold on a new one.

    ``learn``: the threshold a re-scored entry must clear, ``model`` (the model's own),
    ``context`` (learnt on the other lists' entries scored as if every other entry of their
    list were decided) or ``off`` (decisions do not join the nearest-example component);
    ``carry``: whether decisions carry to close entries by similarity; ``policy``: see
    :data:`POLICIES` (carry-over keeps the ``codes`` thresholds either way).
    """
    names = sorted(sources)
    conf = np.concatenate([sources[n].conf for n in names])
    right = np.concatenate([classes[sources[n].top] == sources[n].truth for n in names])
    grp = np.concatenate([[n] * len(sources[n].conf) for n in names])
    model = _nested_threshold(conf, right, grp, target)
    learn_at = {"model": model, "off": 1.01}.get(learn, 1.01)
    if learn == "context" and all(sources[n].parts is not None for n in names):
        ctx = [context_confidence(sources[n], classes) for n in names]
        learn_at = _nested_threshold(
            np.concatenate([c for c, _ in ctx]), np.concatenate([r for _, r in ctx]), grp, target
        )
    if policy == "table":
        model = min(model, _table_budget_threshold(conf, right, grp, target))
        if learn == "model":
            learn_at = model
    if not carry:
        return Rules(model, 1.01, 1.01, learn_at)

    sims, same, agrees, pgrp = [], [], [], []
    for n in names:
        d = sources[n]
        i, j, sim = _neighbour_pairs(d.emb)
        sims.append(sim)
        same.append(d.truth[i] == d.truth[j])
        agrees.append(d.truth[i] == classes[d.top[j]])
        pgrp.append(np.full(len(i), n, dtype=object))
    s, ok, ag, g = (np.concatenate(x) for x in (sims, same, agrees, pgrp))
    carry_same = _nested_threshold(s[ag], ok[ag], g[ag], target) if ag.any() else 1.01
    carry_other = _nested_threshold(s[~ag], ok[~ag], g[~ag], target) if (~ag).any() else 1.01
    return Rules(model, carry_same, carry_other, learn_at)


class Learning:
    """A list's nearest-example component as decisions join it, and the expected number of
    entries each pending entry's decision would code (``gain``).

    ``gain[i]`` = sum over pending j of sum over i's likeliest codes c of P(i is c) * [j's
    confidence in c clears the threshold once i, decided as c, is among c's examples]. An entry
    j clears for c at similarity ``need[j, c]`` (the rest of its logits fixed), so the pairwise
    matrix is kept up to date by recomputing only the rows and columns of re-scored entries.
    """

    def __init__(
        self,
        parts: ScoreParts,
        threshold: float,
        pending: np.ndarray,
        top_m: int = 3,
        track_gain: bool = True,
        tolerance: float = 1e-3,
    ):
        self.parts, self.threshold, self.top_m = parts, threshold, top_m
        # A re-scored entry whose probabilities moved less than ``tolerance`` keeps its
        # place in the gain matrix (its confidence is always exact).
        self.track_gain, self.tolerance = track_gain, tolerance
        self.sim = parts.train_sim.astype(np.float64)
        self.pair = (parts.emb @ parts.emb.T).astype(np.float32)
        np.fill_diagonal(self.pair, -np.inf)
        self.proba = parts.proba(self.sim)
        n = len(self.sim)
        self.gain = np.zeros(n)
        if not track_gain:
            return
        self.need = self._need(np.arange(n))
        self.cand, self.pc = self._candidates(self.proba)
        self.gains = np.zeros((n, n), dtype=np.float32)
        for lo in range(0, n, 256):
            cols = np.arange(lo, min(n, lo + 256))
            self.gains[:, cols] = self._columns(cols)
        self.gain = self.gains[:, pending].sum(axis=1, dtype=np.float64)

    def _need(self, rows: np.ndarray) -> np.ndarray:
        """Per row and class: the similarity to a decided entry of that class at which the
        row is re-scored with a confidence in it that reaches the threshold (inf: never)."""
        p, t = self.parts, min(self.threshold, 1.0 - 1e-9)
        slope = p.weight + p.decided_weight  # a decided similarity's weight in the logit
        if slope <= 0:
            return np.full((len(rows), self.sim.shape[1]), np.inf)
        head, train = p.head[rows], p.train_sim[rows]
        z = (head + p.weight * self.sim[rows] + p.decided_weight * (self.sim[rows] - train)) / (
            p.temperature
        )
        with np.errstate(divide="ignore", invalid="ignore"):
            # log of the other classes' summed exp(z): logsumexp(z) + log(1 - p_c)
            rest = logsumexp(z, axis=1, keepdims=True) + np.log1p(
                -np.minimum(self.proba[rows], 1 - 1e-12)
            )
            need = (
                p.temperature * (rest + np.log(t / (1 - t))) - head + p.decided_weight * train
            ) / slope
        # A decision re-scores an entry only where it beats the similarity the class has.
        return np.where(np.isfinite(need), np.maximum(need, self.sim[rows]), np.inf)

    def _candidates(self, proba: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        m = min(self.top_m, proba.shape[1])
        cand = np.argsort(-proba, axis=1, kind="stable")[:, :m]
        return cand, np.take_along_axis(proba, cand, axis=1).astype(np.float32)

    def _columns(self, cols: np.ndarray) -> np.ndarray:
        """gains[:, cols]: each row's expected entries coded among ``cols``."""
        need = self.need[cols][:, self.cand]  # (cols, rows, m)
        hit = self.pair[:, cols].T[:, :, None] >= need
        return np.asarray((hit * self.pc[None]).sum(axis=2).T)

    def _rows(self, rows: np.ndarray) -> np.ndarray:
        """gains[rows, :]."""
        need = self.need[:, self.cand[rows]]  # (all, rows, m)
        hit = self.pair[rows].T[:, :, None] >= need
        return np.asarray((hit * self.pc[rows][None]).sum(axis=2).T)

    def close(self, rows: np.ndarray) -> None:
        """Entries that left the queue no longer count in anyone's gain."""
        if len(rows) and self.track_gain:
            self.gain -= self.gains[:, rows].sum(axis=1, dtype=np.float64)

    def decide(self, i: int, c: int, pending: np.ndarray) -> np.ndarray:
        """Entry ``i`` decided as class ``c`` joins c's examples; returns the pending entries
        re-scored (the caller reads ``proba`` for them). ``pending`` excludes ``i``."""
        if c < 0:
            return np.zeros(0, np.intp)
        moved = np.flatnonzero(pending & (self.pair[i] > self.sim[:, c]))
        if not len(moved):
            return moved
        self.sim[moved, c] = self.pair[i, moved]
        before_p = self.proba[moved]
        self.proba[moved] = self.parts.proba(self.sim[moved], moved)
        if not self.track_gain:
            return moved
        shift = np.abs(self.proba[moved] - before_p).max(axis=1)
        live = moved[shift > self.tolerance]  # pending by construction
        if not len(live):
            return moved
        self.need[live] = self._need(live)
        self.cand[live], self.pc[live] = self._candidates(self.proba[live])
        before = self.gains[:, live].sum(axis=1, dtype=np.float64)
        self.gains[:, live] = self._columns(live)
        self.gains[live] = self._rows(live)
        self.gains[live, live] = 0.0
        self.gain += self.gains[:, live].sum(axis=1, dtype=np.float64) - before
        self.gain[live] = self.gains[live][:, pending].sum(axis=1, dtype=np.float64)
        return moved


def list_threshold(
    conf: np.ndarray, right: np.ndarray, target: float, model: float, level: float = 0.95
) -> float:
    """A list's own model threshold from a random sample of its entries decided: the lowest
    sampled confidence t below ``model`` such that the sampled entries with confidence in
    [t, model) are right at ``target`` or better with ``level`` confidence (one-sided
    Clopper-Pearson lower bound); ``model`` when none is."""
    below = conf < model
    c, r = conf[below], right[below]
    order = np.argsort(-c, kind="stable")
    c, r = c[order], r[order].astype(float)
    hits, size = np.cumsum(r), np.arange(1, len(r) + 1)
    lower = np.where(hits > 0, beta.ppf(1 - level, hits, size - hits + 1), 0.0)
    last_of_ties = np.r_[c[1:] != c[:-1], True] if len(c) else np.zeros(0, bool)
    good = np.flatnonzero((lower >= target) & last_of_ties)
    return float(c[good[-1]]) if len(good) else model


@dataclass
class Curve:
    """Share of a list coded after k decisions, and the precision of what was coded."""

    rows: int
    auto_at_start: int
    decisions: list[int]  # k = 0 .. all pending decided
    coded: list[int]  # entries with a code after k decisions
    wrong: list[int]  # coded entries whose code differs from the gold label
    carried: int = 0  # entries coded by similarity to a decision made on another entry
    carried_wrong: int = 0
    auto_wrong_at_start: int = 0
    learnt: int = 0  # entries re-scored over the threshold by a decision on another entry
    learnt_wrong: int = 0
    relaxed: int = 0  # entries auto-coded at the list's own threshold (after its sample)
    relaxed_wrong: int = 0
    own_threshold: float = 1.01  # the model threshold the list ended with
    # Which decision coded each entry: -1 the model at the start, else the entry whose
    # decision coded it (itself when decided), in the audit's sense.
    coded_by: np.ndarray = field(default_factory=lambda: np.zeros(0, np.intp))

    def decisions_to_code_all(self) -> int:
        """Decisions after which every entry has a code."""
        return next(k for k, c in zip(self.decisions, self.coded, strict=True) if c == self.rows)

    def final_precision(self) -> float:
        """Share of the list whose final code is the gold one."""
        return 1.0 - self.wrong[-1] / self.rows if self.rows else 1.0

    @property
    def machine_coded(self) -> int:
        """Entries no human decided: auto-coded at the start, carried or learnt."""
        return self.auto_at_start + self.carried + self.learnt + self.relaxed

    @property
    def machine_wrong(self) -> int:
        """Machine-coded entries with a wrong code (all the table's errors: oracle reviewer)."""
        return (
            self.auto_wrong_at_start + self.carried_wrong + self.learnt_wrong + self.relaxed_wrong
        )


def _share_right(wrong: int, total: int) -> float:
    return round(1 - wrong / total, 4) if total else 1.0


def simulate(
    data: SourceData,
    classes: np.ndarray,
    rules: Rules,
    order: str,
    rng: np.random.Generator,
    uncertainty: float = 1.0,
    sample: int = 0,
    target: float = 0.97,
) -> Curve:
    """Replay one list under one queue order with an oracle reviewer.

    ``uncertainty``: the power of (1 - confidence) the value order multiplies the expected
    entries coded by (0: expected entries alone). ``sample``: the first decisions go to a
    random sample of the pending entries; once it is decided, the list's own threshold
    (:func:`list_threshold`, at ``target``) auto-codes the pending entries that clear it.
    """
    n = len(data.truth)
    gold = gold_index(data.truth, classes)
    code = np.full(n, -1)  # the code each entry got (-1: pending)
    coded_by = np.full(n, -2, dtype=np.intp)
    conf, top = data.conf.copy(), data.top.copy()
    auto = conf >= rules.model
    code[auto], coded_by[auto] = top[auto], -1
    auto_wrong = int((auto & (top != gold)).sum())
    pending = ~auto
    noise = rng.random(n)  # the random order, and a tie-break

    # Carry-over: expected entries coded by deciding i, for each pending j the probability
    # that i's code carries to j: P(i's code == j's top) where the "same" threshold is met,
    # P(it differs) where the stricter "other" one is met. Kept up to date as j leave.
    carrying = min(rules.carry_same, rules.carry_other) <= 1.0
    carry_value = np.zeros(n)
    if carrying:
        sim = (data.emb @ data.emb.T).astype(np.float32)
        np.fill_diagonal(sim, -1.0)
        p_top = data.proba[:, data.top].astype(np.float32)  # P(code of i == top of j)
        carry = (sim >= rules.carry_same) * p_top + (sim >= rules.carry_other) * (1.0 - p_top)
        carry_value = carry[:, pending].sum(axis=1, dtype=np.float64)
    learning = None
    if data.parts is not None and rules.learn <= 1.0 and data.parts.weight > 0:
        learning = Learning(data.parts, rules.learn, pending, track_gain=order == "value")

    sampled: list[tuple[float, bool]] = []  # (confidence, top is right) of the sample

    def pick() -> int:
        idx = np.flatnonzero(pending)
        if order == "random" or len(sampled) < sample:
            return int(idx[np.argmin(noise[idx])])
        if order == "confidence":
            return int(idx[np.lexsort((noise[idx], conf[idx]))[0]])
        # value: largest expected gain, then least confident, then random.
        value = 1.0 + carry_value[idx]
        if learning is not None:
            value = value + learning.gain[idx]
        value = value * (1.0 - conf[idx]) ** uncertainty
        return int(idx[np.lexsort((noise[idx], conf[idx], -np.round(value, 6)))[0]])

    def close(js: np.ndarray) -> None:
        nonlocal carry_value
        pending[js] = False
        if carrying:
            carry_value = carry_value - carry[:, js].sum(axis=1)
        if learning is not None:
            learning.close(js)

    coded = [int((code >= 0).sum())]
    wrong = [int(((code >= 0) & (code != gold)).sum())]
    carried = carried_wrong = learnt = learnt_wrong = relaxed = relaxed_wrong = 0
    own_threshold = rules.model
    while pending.any():
        i = pick()
        code[i], coded_by[i] = gold[i], i
        close(np.array([i]))
        if len(sampled) < sample:
            sampled.append((float(conf[i]), bool(top[i] == gold[i])))
            if len(sampled) == sample or not pending.any():
                c_s, r_s = (np.array(x) for x in zip(*sampled, strict=True))
                own_threshold = list_threshold(c_s, r_s, target, rules.model)
                done = np.flatnonzero(pending & (conf >= own_threshold))
                if len(done):
                    code[done], coded_by[done] = top[done], -1
                    relaxed += len(done)
                    relaxed_wrong += int((top[done] != gold[done]).sum())
                    close(done)
        if carrying:
            # Carry the decision to similar pending entries.
            idx = np.flatnonzero(pending)
            need = np.where(top[idx] == gold[i], rules.carry_same, rules.carry_other)
            moved = idx[sim[i, idx] >= need]
            if len(moved):
                code[moved], coded_by[moved] = gold[i], i
                carried += len(moved)
                carried_wrong += int((gold[moved] != gold[i]).sum())
                close(moved)
        if learning is not None:
            # The decision joins the nearest-example component; re-scored entries whose top
            # confidence clears the threshold leave the queue auto-coded.
            moved = learning.decide(i, int(gold[i]), pending)
            if len(moved):
                p = learning.proba[moved]
                top[moved] = np.argmax(p, axis=1)
                conf[moved] = p[np.arange(len(moved)), top[moved]]
                done = moved[conf[moved] >= rules.learn]
                if len(done):
                    code[done], coded_by[done] = top[done], i
                    learnt += len(done)
                    learnt_wrong += int((top[done] != gold[done]).sum())
                    close(done)
        coded.append(int((code >= 0).sum()))
        wrong.append(int(((code >= 0) & (code != gold)).sum()))
    return Curve(
        rows=n,
        auto_at_start=int(auto.sum()),
        decisions=list(range(len(coded))),
        coded=coded,
        wrong=wrong,
        carried=carried,
        carried_wrong=carried_wrong,
        auto_wrong_at_start=auto_wrong,
        learnt=learnt,
        learnt_wrong=learnt_wrong,
        relaxed=relaxed,
        relaxed_wrong=relaxed_wrong,
        own_threshold=own_threshold,
        coded_by=coded_by,
    )


def simulate_review(
    sources: dict[str, SourceData],
    classes: np.ndarray,
    target: float = 0.97,
    seed: int = 0,
    learn: str = "model",
    carry: bool = True,
    sample_share: float = 0.0,
    uncertainty: float = 1.0,
    policy: str = "codes",
) -> dict[str, Any]:
    """Every source replayed with rules learnt on the others, under every queue order.

    ``learn``, ``carry``: see :func:`fit_rules`. ``sample_share``: the value order starts
    with a random sample of this share of each list, which sets the list's own threshold;
    ``uncertainty``: see :func:`simulate`; ``policy``: see :data:`POLICIES`.
    """
    out: dict[str, Any] = {
        "target_precision": target,
        # Decisions join the nearest-example component only where the scorer's pieces are.
        "mechanism": {
            "learn": learn if all(d.parts is not None for d in sources.values()) else "off",
            "carry": carry,
            "sample_share": sample_share,
            "uncertainty": uncertainty,
            "policy": policy,
        },
        "per_source": {},
        "pooled": {},
    }
    curves: dict[str, list[Curve]] = {o: [] for o in ORDERS}
    ceilings = []
    for name in sorted(sources):
        others = {k: v for k, v in sources.items() if k != name}
        rules = fit_rules(others, classes, target, learn, carry, policy)
        ceilings.append(table_ceiling(sources[name], classes, target))
        out["per_source"][name] = {"rules": rules.__dict__, "ceiling": ceilings[-1]}
        for order in ORDERS:
            extra: dict[str, Any] = {}
            if order == "value":
                size = int(round(sample_share * len(sources[name].truth)))
                extra = {"sample": size, "target": target, "uncertainty": uncertainty}
            rng = np.random.default_rng(seed)
            c = simulate(sources[name], classes, rules, order, rng, **extra)
            curves[order].append(c)
            out["per_source"][name][order] = summarise(c)
        log.info(
            "review simulation %s: %s",
            name,
            {o: out["per_source"][name][o]["decision_share"] for o in ORDERS},
        )
    for order in ORDERS:
        out["pooled"][order] = pool(curves[order])
    out["ceiling"] = pool_ceilings(ceilings)
    return out


def simulate_held_out_lists(
    proba: np.ndarray,
    classes: np.ndarray,
    truth: np.ndarray,
    folds: np.ndarray,
    emb: np.ndarray,
    target: float = 0.97,
    parts: ScoreParts | None = None,
    **mechanism: Any,
) -> dict[str, Any]:
    """The simulation on held-out rows: one list per fold (out-of-fold probabilities).

    With ``parts`` (the fold scorers' pieces, row for row) decisions join the nearest-example
    component; without, only the carry-over codes entries after a decision.
    """
    sources = {}
    for f in sorted(set(folds)):
        rows = np.flatnonzero(folds == f)
        sources[f] = SourceData(
            proba[rows],
            truth[rows],
            unit_rows(emb[rows]),
            None if parts is None else parts.subset(rows),
        )
    return simulate_review(sources, classes, target, **mechanism)


def summarise(c: Curve) -> dict[str, Any]:
    """The figures of one curve, with the curve itself thinned to at most 101 points."""
    k = c.decisions_to_code_all()
    keep = np.unique(np.linspace(0, len(c.decisions) - 1, num=min(101, len(c.decisions))))
    return {
        "rows": c.rows,
        "auto_at_start": c.auto_at_start,
        "auto_precision_at_start": _share_right(c.auto_wrong_at_start, c.auto_at_start),
        "decisions_to_code_all": k,
        "decision_share": round(k / c.rows, 4) if c.rows else 0.0,
        "precision": round(c.final_precision(), 4),
        "carried": c.carried,
        "carried_precision": _share_right(c.carried_wrong, c.carried),
        "learnt": c.learnt,
        "learnt_precision": _share_right(c.learnt_wrong, c.learnt),
        "relaxed": c.relaxed,
        "relaxed_precision": _share_right(c.relaxed_wrong, c.relaxed),
        "own_threshold": round(c.own_threshold, 4),
        "machine_coded": c.machine_coded,
        "machine_precision": _share_right(c.machine_wrong, c.machine_coded),
        "curve": {
            "decision_share": [round(c.decisions[int(i)] / c.rows, 4) for i in keep],
            "coded_share": [round(c.coded[int(i)] / c.rows, 4) for i in keep],
        },
    }


def pool(curves: list[Curve]) -> dict[str, Any]:
    """Pooled over lists: each list's decisions as a share of its rows, row-weighted, and the
    unweighted mean share over lists."""
    rows = sum(c.rows for c in curves)
    decisions = sum(c.decisions_to_code_all() for c in curves)
    wrong = sum(c.wrong[-1] for c in curves)
    machine = sum(c.machine_coded for c in curves)
    # Pooled curve: at each decision share s of every list, the share of all rows coded.
    grid = np.linspace(0, 1, 101)
    coded = np.zeros_like(grid)
    for c in curves:
        x = np.array(c.decisions) / c.rows
        coded += np.interp(grid, x, np.array(c.coded, dtype=float), right=c.rows)
    return {
        "rows": rows,
        "auto_at_start_share": round(sum(c.auto_at_start for c in curves) / rows, 4),
        "decision_share_weighted": round(decisions / rows, 4),
        "decision_share_mean_over_lists": round(
            float(np.mean([c.decisions_to_code_all() / c.rows for c in curves])), 4
        ),
        "precision": round(1 - wrong / rows, 4),
        "carried_share": round(sum(c.carried for c in curves) / rows, 4),
        "learnt_share": round(sum(c.learnt for c in curves) / rows, 4),
        "learnt_precision": _share_right(
            sum(c.learnt_wrong for c in curves), sum(c.learnt for c in curves)
        ),
        "relaxed_share": round(sum(c.relaxed for c in curves) / rows, 4),
        "machine_share": round(machine / rows, 4),
        "machine_precision": _share_right(sum(c.machine_wrong for c in curves), machine),
        "curve": {
            "decision_share": [round(float(x), 2) for x in grid],
            "coded_share": [round(float(y), 4) for y in coded / rows],
        },
    }


def _per_list_rows(result: dict[str, Any]) -> list[str]:
    """Markdown rows: per list and pooled, decisions per queue order and precisions."""
    lines = [
        "| list | rows | auto at start | "
        + " | ".join(ORDERS)
        + " | learnt | machine precision | precision |",
        "|---|---|---|" + "---|" * len(ORDERS) + "---|---|---|",
    ]
    for name, r in sorted(result["per_source"].items()):
        first, v = r[ORDERS[0]], r["value"]
        shares = " | ".join(f"{r[o]['decision_share']:.1%}" for o in ORDERS)
        lines.append(
            f"| {name} | {first['rows']} | {first['auto_at_start'] / first['rows']:.1%} | "
            f"{shares} | {v.get('learnt', 0) / v['rows']:.1%} | "
            f"{v.get('machine_precision', 1.0):.3f} | {v['precision']:.3f} |"
        )
    p = result["pooled"]
    rows = p[ORDERS[0]]["rows"]
    pooled = " | ".join(f"{p[o]['decision_share_weighted']:.1%}" for o in ORDERS)
    mean = " | ".join(f"{p[o]['decision_share_mean_over_lists']:.1%}" for o in ORDERS)
    auto = p[ORDERS[0]]["auto_at_start_share"]
    v = p["value"]
    lines.append(
        f"| **pooled** | {rows} | {auto:.1%} | {pooled} | {v.get('learnt_share', 0):.1%} | "
        f"{v.get('machine_precision', 1.0):.3f} | {v['precision']:.3f} |"
    )
    lines.append(f"| mean over lists | | | {mean} | | | |")
    return lines


def _ceiling_rows(result: dict[str, Any]) -> list[str]:
    """Markdown: per list, the most this scorer could code in a table at the target (the best
    threshold in hindsight), at the start and with every other entry decided."""
    run = result.get("table_policy", result)
    lines = [
        "## How far decisions could go",
        "",
        f"The most of each list the scorer could code in a table right at "
        f"{result['target_precision']:.2f}, whatever the queue order or thresholds: the entries "
        "above the best confidence threshold in hindsight whose wrong codes fit the table's "
        "error budget, with the model alone and with every other entry of the list decided "
        "(the most evidence decisions can bring; ``table_ceiling``). One minus the latter is, "
        "in effect, a floor on the decisions this scorer needs in any queue order; the value "
        "order's decisions under the table target beside it. Then the share of top codes "
        "right, at the start and with the rest decided, and how often an entry's nearest "
        "entry of its list shares its code (what one decision can teach about another).",
        "",
        "| list | rows | machine at start | machine, rest decided | decisions at least "
        "| value order decided | right at start | right, rest decided | nearest shares code |",
        "|---|---|---|---|---|---|---|---|---|",
    ]

    def row(name: str, c: dict[str, float], decided: float) -> str:
        return (
            f"| {name} | {c['rows']} | {c['machine_at_start']:.1%} | "
            f"{c['machine_all_others_decided']:.1%} | "
            f"{1 - c['machine_all_others_decided']:.1%} | {decided:.1%} | "
            f"{c.get('right_at_start', float('nan')):.3f} | "
            f"{c.get('right_all_others_decided', float('nan')):.3f} | "
            f"{c.get('nearest_shares_code', float('nan')):.3f} |"
        )

    for name, r in sorted(result["per_source"].items()):
        lines.append(row(name, r["ceiling"], run["per_source"][name]["value"]["decision_share"]))
    pooled = run["pooled"]["value"]["decision_share_weighted"]
    lines.append(row("**pooled**", result["ceiling"], pooled))
    return lines


def review_simulation_table(result: dict[str, Any]) -> str:
    """Markdown: decisions needed to code each list whole, per queue order (and, when the
    result has one, the same under the ``table`` policy)."""
    mech = result.get("mechanism", {})
    lines = [
        f"# Simulated review ({result.get('model_version', '')})",
        "",
        f"Each national list coded whole at target precision {result['target_precision']:.2f}: "
        "the model auto-codes, an oracle reviewer decides the rest in queue order, each "
        "decision joins the nearest-example component and re-scores the pending entries "
        f"(threshold: {mech.get('learn', 'model')}; carry-over by similarity: "
        f"{'on' if mech.get('carry', True) else 'off'}; training/review_sim.py). Decisions as "
        "a share of the list's entries; entries coded by a decision on another entry "
        "(learnt), the precision of every machine-made code (at the start, learnt, carried) "
        "and of all codes in the finished table, for the value order.",
        "",
        *_per_list_rows(result),
    ]
    if result.get("table_policy"):
        lines += [
            "",
            "## The target on the finished table",
            "",
            f"The same lists when the target is the finished table's precision "
            f"({result['target_precision']:.2f}) rather than every machine-made code's: the "
            "model codes down to the confidence at which its wrong codes on the other lists "
            "fill the table's error budget (less a reserve for the codes decisions make), and "
            "decisions re-score pending entries at that confidence (``policy='table'``).",
            "",
            *_per_list_rows(result["table_policy"]),
        ]
    if result.get("ceiling", {}).get("machine_all_others_decided") is not None:
        lines += ["", *_ceiling_rows(result)]
    if result.get("variants"):
        lines += [
            "",
            "Other mechanisms on the same lists, pooled: decisions to code all, per queue "
            "order, and the precision of the value order's machine-made codes.",
            "",
            "| mechanism | " + " | ".join(ORDERS) + " | machine precision (value) |",
            "|---|" + "---|" * len(ORDERS) + "---|",
        ]
        for name, r in result["variants"].items():
            shares = " | ".join(f"{r[o]['decision_share_weighted']:.1%}" for o in ORDERS)
            lines.append(f"| {name} | {shares} | {r['value']['machine_precision']:.3f} |")
    return "\n".join(lines) + "\n"


def plot_review_curves(result: dict[str, Any], path: Any) -> None:
    """Share of the list coded against human decisions, one line per queue order."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    runs = [("", "-", result)]
    if result.get("table_policy"):
        runs.append(("table target, ", "--", result["table_policy"]))
    for prefix, style, run in runs:
        for order in ORDERS:
            p = run["pooled"][order]
            ax.plot(
                p["curve"]["decision_share"],
                p["curve"]["coded_share"],
                style,
                label=f"{prefix}{order}: all coded after {p['decision_share_weighted']:.0%} "
                "decisions",
            )
    ax.set_xlabel("human decisions (share of the list's entries)")
    ax.set_ylabel("share of entries coded (auto + reviewed)")
    ax.set_title(f"Simulated review, target precision {result['target_precision']:.2f}")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.01)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)

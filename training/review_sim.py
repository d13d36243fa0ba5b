"""Simulated review of a new national list: how many human decisions code all of it?

An office adopting ICCS codes its national list once (the correspondence table). Replayed
here for each held-out source (leave one source out) with an oracle reviewer who answers
with the gold label:

1. the model auto-codes an entry when the confidence of its top code clears a threshold
   learnt on the *other* sources for the target precision;
2. a reviewer decides the pending entries one at a time, in queue order;
3. after each decision, pending entries close enough to the decided one (cosine similarity of
   their embeddings) take its code automatically, when the similarity clears a threshold
   learnt, again on the other sources, for the same target precision: one threshold when the
   decided code equals the entry's own top suggestion, a stricter one when it overrides it.

Queue orders compared on the same state:
- ``confidence``: least confident first (uncertainty sampling, what peers do);
- ``random``: arbitrary order;
- ``value``: expected number of entries a decision codes (itself plus the pending entries it
  would carry over, weighted by the probability that the decided code is the one that carries
  them), the least confident first among equals.

Only human decisions carry codes to other entries (never an auto-code), so an error cannot
spread through a chain. An entry is coded when it has its full code (the label's own depth),
so the figures are for a correspondence table, not for the back-off policy.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np

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
    """Thresholds learnt without the list being simulated."""

    model: float  # top-code confidence at or above which the model auto-codes
    carry_same: float  # similarity at which a decision carries to an entry whose top it is
    carry_other: float  # similarity at which a decision overrides an entry's top suggestion


@dataclass
class SourceData:
    """One held-out list: out-of-fold probabilities, gold codes and unit-norm embeddings."""

    proba: np.ndarray
    truth: np.ndarray
    emb: np.ndarray
    top: np.ndarray = field(init=False)
    conf: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.top = np.argmax(self.proba, axis=1)
        self.conf = self.proba[np.arange(len(self.proba)), self.top]


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


def fit_rules(sources: dict[str, SourceData], classes: np.ndarray, target: float) -> Rules:
    """Rules from the given (other) sources, nested over them so they hold on a new one."""
    names = sorted(sources)
    conf = np.concatenate([sources[n].conf for n in names])
    right = np.concatenate([classes[sources[n].top] == sources[n].truth for n in names])
    grp = np.concatenate([[n] * len(sources[n].conf) for n in names])
    model = _nested_threshold(conf, right, grp, target)

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
    return Rules(model, carry_same, carry_other)


@dataclass
class Curve:
    """Share of a list coded after k decisions, and the precision of what was coded."""

    rows: int
    auto_at_start: int
    decisions: list[int]  # k = 0 .. all pending decided
    coded: list[int]  # entries with a code after k decisions
    wrong: list[int]  # coded entries whose code differs from the gold label
    carried: int = 0  # entries coded by a decision made on another entry
    carried_wrong: int = 0

    def decisions_to_code_all(self) -> int:
        """Decisions after which every entry has a code."""
        return next(k for k, c in zip(self.decisions, self.coded, strict=True) if c == self.rows)

    def final_precision(self) -> float:
        """Share of the list whose final code is the gold one."""
        return 1.0 - self.wrong[-1] / self.rows if self.rows else 1.0


def simulate(
    data: SourceData,
    classes: np.ndarray,
    rules: Rules,
    order: str,
    rng: np.random.Generator,
) -> Curve:
    """Replay one list under one queue order with an oracle reviewer."""
    n = len(data.truth)
    cls_index = {c: k for k, c in enumerate(classes)}
    gold = np.array([cls_index.get(t, -1) for t in data.truth])
    code = np.full(n, -1)  # the code each entry got (-1: pending)
    auto = data.conf >= rules.model
    code[auto] = data.top[auto]
    pending = ~auto
    sim = (data.emb @ data.emb.T).astype(np.float32)
    np.fill_diagonal(sim, -1.0)

    # Expected entries coded by deciding i: itself, plus for each pending j the probability
    # that i's code carries to j: P(i's code == j's top) where the "same" threshold is met,
    # P(it differs) where the stricter "other" one is met. Kept up to date as j leave.
    p_top = data.proba[:, data.top].astype(
        np.float32
    )  # p_top[i, j] = P(code of i == top of j), by the model
    carry = (sim >= rules.carry_same) * p_top + (sim >= rules.carry_other) * (1.0 - p_top)
    value = 1.0 + carry[:, pending].sum(axis=1)
    noise = rng.random(n)  # the random order, and a tie-break

    def pick() -> int:
        idx = np.flatnonzero(pending)
        if order == "random":
            return int(idx[np.argmin(noise[idx])])
        if order == "confidence":
            return int(idx[np.lexsort((noise[idx], data.conf[idx]))[0]])
        # value: largest expected gain, then least confident, then random.
        return int(idx[np.lexsort((noise[idx], data.conf[idx], -np.round(value[idx], 6)))[0]])

    def close(js: np.ndarray) -> None:
        nonlocal value
        pending[js] = False
        value = value - carry[:, js].sum(axis=1)

    coded = [int((code >= 0).sum())]
    wrong = [int(((code >= 0) & (code != gold)).sum())]
    carried = carried_wrong = 0
    while pending.any():
        i = pick()
        code[i] = gold[i]
        close(np.array([i]))
        # Carry the decision to similar pending entries (re-scored without retraining).
        idx = np.flatnonzero(pending)
        need = np.where(data.top[idx] == gold[i], rules.carry_same, rules.carry_other)
        moved = idx[sim[i, idx] >= need]
        if len(moved):
            code[moved] = gold[i]
            carried += len(moved)
            carried_wrong += int((gold[moved] != gold[i]).sum())
            close(moved)
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
    )


def simulate_review(
    sources: dict[str, SourceData],
    classes: np.ndarray,
    target: float = 0.97,
    seed: int = 0,
) -> dict[str, Any]:
    """Every source replayed with rules learnt on the others, under every queue order."""
    out: dict[str, Any] = {"target_precision": target, "per_source": {}, "pooled": {}}
    curves: dict[str, list[Curve]] = {o: [] for o in ORDERS}
    for name in sorted(sources):
        others = {k: v for k, v in sources.items() if k != name}
        rules = fit_rules(others, classes, target)
        out["per_source"][name] = {"rules": rules.__dict__}
        for order in ORDERS:
            c = simulate(sources[name], classes, rules, order, np.random.default_rng(seed))
            curves[order].append(c)
            out["per_source"][name][order] = summarise(c)
        log.info(
            "review simulation %s: %s",
            name,
            {o: out["per_source"][name][o]["decision_share"] for o in ORDERS},
        )
    for order in ORDERS:
        out["pooled"][order] = pool(curves[order])
    return out


def simulate_held_out_lists(
    proba: np.ndarray,
    classes: np.ndarray,
    truth: np.ndarray,
    folds: np.ndarray,
    emb: np.ndarray,
    target: float = 0.97,
) -> dict[str, Any]:
    """The simulation on held-out rows: one list per fold (out-of-fold probabilities)."""
    sources = {
        f: SourceData(proba[folds == f], truth[folds == f], unit_rows(emb[folds == f]))
        for f in sorted(set(folds))
    }
    return simulate_review(sources, classes, target)


def summarise(c: Curve) -> dict[str, Any]:
    """The figures of one curve, with the curve itself thinned to at most 101 points."""
    k = c.decisions_to_code_all()
    keep = np.unique(np.linspace(0, len(c.decisions) - 1, num=min(101, len(c.decisions))))
    return {
        "rows": c.rows,
        "auto_at_start": c.auto_at_start,
        "decisions_to_code_all": k,
        "decision_share": round(k / c.rows, 4) if c.rows else 0.0,
        "precision": round(c.final_precision(), 4),
        "carried": c.carried,
        "carried_precision": round(1 - c.carried_wrong / c.carried, 4) if c.carried else 1.0,
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
    carried = sum(c.carried for c in curves)
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
        "carried_share": round(carried / rows, 4),
        "curve": {
            "decision_share": [round(float(x), 2) for x in grid],
            "coded_share": [round(float(y), 4) for y in coded / rows],
        },
    }


def review_simulation_table(result: dict[str, Any]) -> str:
    """Markdown: decisions needed to code each list whole, per queue order."""
    lines = [
        f"# Simulated review ({result.get('model_version', '')})",
        "",
        f"Each national list coded whole at target precision {result['target_precision']:.2f}: "
        "the model auto-codes, an oracle reviewer decides the rest in queue order, each "
        "decision carries to similar pending entries (training/review_sim.py). Decisions as a "
        "share of the list's entries; precision of all codes in the finished table.",
        "",
        "| list | rows | auto at start | " + " | ".join(ORDERS) + " | precision (value) |",
        "|---|---|---|" + "---|" * len(ORDERS) + "---|",
    ]
    for name, r in sorted(result["per_source"].items()):
        first = r[ORDERS[0]]
        shares = " | ".join(f"{r[o]['decision_share']:.1%}" for o in ORDERS)
        lines.append(
            f"| {name} | {first['rows']} | {first['auto_at_start'] / first['rows']:.1%} | "
            f"{shares} | {r['value']['precision']:.3f} |"
        )
    p = result["pooled"]
    rows = p[ORDERS[0]]["rows"]
    pooled = " | ".join(f"{p[o]['decision_share_weighted']:.1%}" for o in ORDERS)
    mean = " | ".join(f"{p[o]['decision_share_mean_over_lists']:.1%}" for o in ORDERS)
    auto = p[ORDERS[0]]["auto_at_start_share"]
    lines.append(f"| **pooled** | {rows} | {auto:.1%} | {pooled} | {p['value']['precision']:.3f} |")
    lines.append(f"| mean over lists | | | {mean} | |")
    return "\n".join(lines) + "\n"


def plot_review_curves(result: dict[str, Any], path: Any) -> None:
    """Share of the list coded against human decisions, one line per queue order."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    for order in ORDERS:
        p = result["pooled"][order]
        ax.plot(
            p["curve"]["decision_share"],
            p["curve"]["coded_share"],
            label=f"{order}: all coded after {p['decision_share_weighted']:.0%} decisions",
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

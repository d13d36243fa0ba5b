"""Auto-coding policies compared on held-out sources (a script, not a test; issue 12).

Every variant learns its thresholds (and target map) without the source it is scored on, so
each figure is what a new jurisdiction would see:

- ``today``: the served policy, per-level thresholds plus the target map fitted on the other
  sources' rows pooled (training/policy_sim.py);
- ``no_map``: the per-level thresholds alone;
- ``worst_source``: the target map fitted so that every other source, not their pooled rows,
  reaches the target;
- ``by_similarity``: thresholds and target map learnt separately per band of the row's best
  similarity to a training example (the nearest-example component's own similarity): a text
  unlike anything the model was trained on gets the thresholds of such texts.

    .venv/bin/python bench/policy_variants.py --save state/held_out_parts.npz
    .venv/bin/python bench/policy_variants.py --load state/held_out_parts.npz
    .venv/bin/python bench/policy_variants.py --entry VERSION  # its out_of_fold.npz

``--entry`` reads the logits the training run saved (no similarities, so no ``by_similarity``).

Prints coverage and precision pooled over rows, the unweighted mean over sources and each
source, at targets 0.90, 0.95 and 0.97.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from service.models.calibration import effective_target  # noqa: E402
from training.policy_sim import PolicyReplay, fit_target_map  # noqa: E402

TARGETS = (0.90, 0.95, 0.97)
# Similarity bands (cosine in the nearest-example space): quartile-like cuts of the lists.
BANDS = (0.75, 0.85, 0.93)
# A band with fewer rows than this on the other sources auto-codes nothing.
MIN_BAND_ROWS = 50

Outcome = tuple[int, int, int]  # rows, auto-coded, auto-coded right
Variant = Callable[[np.ndarray, np.ndarray, float], Outcome]


def held_out(args: argparse.Namespace) -> dict[str, np.ndarray]:
    """Probabilities, gold codes, source folds and best training similarity per row."""
    if args.load:
        d = np.load(args.load, allow_pickle=False)
        return {k: d[k] for k in d.files}
    if args.entry:
        return from_entry(args.entry)
    from service.config import Settings
    from training.evaluate import held_out_predictions

    h = held_out_predictions(Settings(), args.model, national_only=True)
    proba, idx = h.national()
    out = {
        "proba": proba,
        "classes": h.classes.astype(str),
        "truth": h.labels[idx].astype(str),
        "folds": h.folds[idx].astype(str),
        "best_similarity": h.national_parts().train_sim.max(axis=1),
    }
    if args.save:
        np.savez(args.save, **out)
    return out


def from_entry(version: str) -> dict[str, np.ndarray]:
    """The national lists' rows of an entry's ``out_of_fold.npz``, calibrated."""
    from scipy.special import softmax

    from service.config import Settings

    folder = Settings().registry_dir / version
    temperature = json.loads((folder / "manifest.json").read_text("utf-8"))["calibration"][
        "temperature"
    ]
    with np.load(folder / "out_of_fold.npz", allow_pickle=False) as z:
        national = z["national"]
        return {
            "proba": softmax(z["logits"][national] / temperature, axis=1),
            "classes": z["classes"],
            "truth": z["labels"][national],
            "folds": z["folds"][national],
        }


def variants(replay: PolicyReplay, folds: np.ndarray, sim: np.ndarray | None) -> dict[str, Variant]:
    """Each variant: (rows scored, rows to learn from, target) -> outcome on the scored rows."""

    def learnt(
        inside: np.ndarray, others: np.ndarray, p: float, use_map: bool, worst: bool = False
    ) -> Outcome:
        curves = replay.curves(others)
        tmap = fit_target_map(replay, folds, others, worst_source=worst)
        eff = effective_target(tmap, p) if use_map else p
        return replay.outcome(inside, {lvl: c.threshold_for(eff) for lvl, c in curves.items()})

    found: dict[str, Variant] = {
        "today": lambda i, o, p: learnt(i, o, p, use_map=True),
        "no_map": lambda i, o, p: learnt(i, o, p, use_map=False),
        "worst_source": lambda i, o, p: learnt(i, o, p, use_map=True, worst=True),
    }
    if sim is None:
        return found
    band = np.digitize(sim, BANDS)

    def by_similarity(inside: np.ndarray, others: np.ndarray, p: float) -> Outcome:
        auto = right = 0
        for b in range(len(BANDS) + 1):
            ins, oth = inside & (band == b), others & (band == b)
            if ins.any() and oth.sum() >= MIN_BAND_ROWS:
                _, a, r = learnt(ins, oth, p, use_map=True)
                auto, right = auto + a, right + r
        return int(inside.sum()), auto, right

    return found | {"by_similarity": by_similarity}


def rates(n: int, auto: int, right: int) -> list[float]:
    """[coverage, precision] of one outcome."""
    return [round(auto / n, 3) if n else 0.0, round(right / auto, 3) if auto else 1.0]


def main() -> None:
    """Score every variant on every held-out source and print the figures as JSON lines."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default=None, help="registry version (default: promoted)")
    ap.add_argument("--save", type=Path, help="write the held-out pieces here for --load")
    ap.add_argument("--load", type=Path, help="read held-out pieces written by --save")
    ap.add_argument("--entry", help="read this registry version's out_of_fold.npz")
    args = ap.parse_args()
    d = held_out(args)
    folds = d["folds"]
    replay = PolicyReplay(d["proba"], d["classes"].astype(object), d["truth"].astype(object))
    sources = sorted(set(folds))
    for name, fit in variants(replay, folds, d.get("best_similarity")).items():
        per: dict[str, dict[str, list[float]]] = {}
        pooled = {p: np.zeros(3, dtype=int) for p in TARGETS}
        for s in sources:
            inside = folds == s
            per[s] = {}
            for p in TARGETS:
                outcome = fit(inside, ~inside, p)
                pooled[p] += outcome
                per[s][f"{p:.2f}"] = rates(*outcome)
        mean = {
            f"{p:.2f}": [
                round(float(np.mean([per[s][f"{p:.2f}"][k] for s in sources])), 3) for k in (0, 1)
            ]
            for p in TARGETS
        }
        summary = {f"{p:.2f}": rates(*map(int, pooled[p])) for p in TARGETS}
        print(json.dumps({"variant": name, "pooled": summary, "mean_over_sources": mean}))
        print(json.dumps({"variant": name, "per_source": per}))


if __name__ == "__main__":
    main()

"""A two-stage cascade measured on two registered models' out-of-fold predictions (a script).

Stage 1 (the cheap model) answers a record when its calibrated top-1 confidence reaches the
gate; every other record goes to stage 2 (the strong model). Both entries must be built on one
corpus (the same training data hash): each entry's ``out_of_fold.npz`` holds its evaluation
rows' logits from heads that never saw the row's source, keyed by row, so the two line up
row by row and the cascade is measured leave-one-source-out like each model alone.

    .venv/bin/python bench/cascade.py STAGE1 STAGE2 [--output cascade.json]

For each gate: the share stage 1 answers, accuracy per level on the national lists (pooled over
rows and the mean over lists), and the auto-coded share and precision at target 0.95 with
thresholds and target map learnt without the list they code (nested, as the registry reports
it). Stage 1 alone and stage 2 alone are the first rows. The cost of a cascade per text is
stage 1's plus the stage-2 share of stage 2's: with each model's texts/s from
``bench/models_compare.py`` the script prints that estimate (``--speed STAGE=TEXTS_PER_S``).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
from scipy.special import softmax

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

GATES = (0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95, 0.98)


def load_stage(registry: Path, version: str) -> dict[str, Any]:
    """One entry's out-of-fold rows, calibrated with the entry's own temperature."""
    manifest = json.loads((registry / version / "manifest.json").read_text("utf-8"))
    with np.load(registry / version / "out_of_fold.npz") as z:
        data = {k: z[k] for k in z.files}
    data["proba"] = softmax(data.pop("logits") / manifest["calibration"]["temperature"], axis=1)
    data["data_hash"] = manifest["training_data_hash"]
    return data


def aligned(one: dict[str, Any], two: dict[str, Any]) -> tuple[dict[str, Any], np.ndarray]:
    """Stage 1's rows, with stage 2's probabilities in stage 1's row and class order."""
    if one["data_hash"] != two["data_hash"]:
        raise SystemExit("the two entries were trained on different corpora; rebuild one")
    where = {k: i for i, k in enumerate(two["row_keys"])}
    rows = np.array([where[k] for k in one["row_keys"]])
    column = {c: i for i, c in enumerate(two["classes"])}
    cols = np.array([column[c] for c in one["classes"]])
    return one, two["proba"][rows][:, cols]


def evaluate(proba: np.ndarray, base: dict[str, Any]) -> dict[str, Any]:
    """The registry's headline figures for these probabilities, on the national lists."""
    from training.head import top_codes
    from training.metrics import by_group_metrics
    from training.policy_sim import PolicyReplay, per_source_precision

    national = base["national"]
    p, labels = proba[national], base["labels"][national].astype(object)
    classes = base["classes"].astype(object)
    levels = by_group_metrics(top_codes(p, classes), labels, base["groups"][national])
    held_out = per_source_precision(PolicyReplay(p, classes, labels), base["folds"][national])
    auto = held_out["pooled"]["0.95"]
    return {
        "pooled": {
            k: round(v["accuracy"], 4) for k, v in levels["pooled_weighted_by_rows"].items()
        },
        "mean_over_lists": {
            k: round(v["accuracy"], 4) for k, v in levels["unweighted_mean_over_sources"].items()
        },
        "auto_at_0.95": {"share": auto["coverage"], "precision": auto["precision"]},
    }


def main() -> None:
    """Evaluate stage 1, stage 2 and the cascade at every gate; print a table and JSON."""
    from service.config import Settings

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("stage1")
    ap.add_argument("stage2")
    ap.add_argument("--registry", type=Path, default=None)
    ap.add_argument("--output", type=Path, default=None)
    ap.add_argument("--speed", action="append", default=[], help="VERSION=TEXTS_PER_S")
    a = ap.parse_args()
    registry = a.registry or Settings().registry_dir
    base, strong = aligned(load_stage(registry, a.stage1), load_stage(registry, a.stage2))
    weak = base["proba"]
    speed = {k: float(v) for k, v in (s.split("=", 1) for s in a.speed)}
    confidence = weak.max(axis=1)
    national = base["national"]
    results: dict[str, Any] = {
        "stage1": a.stage1,
        "stage2": a.stage2,
        "rows": int(national.sum()),
        "variants": {},
    }
    variants = {
        "stage 1 alone": np.ones(len(weak), bool),
        "stage 2 alone": np.zeros(len(weak), bool),
    }
    variants.update({f"gate {g:.2f}": confidence >= g for g in GATES})
    print(
        f"{'variant':<16} {'stage 1':>8} {'section':>8} {'division':>8} {'exact':>7} "
        f"{'mean sec':>8} {'auto@.95':>9} {'prec':>6} {'texts/s':>8}"
    )
    for name, first in variants.items():
        proba = np.where(first[:, None], weak, strong)
        figures = evaluate(proba, base)
        share = float(first[national].mean())
        figures["stage1_share"] = round(share, 4)
        if a.stage1 in speed and a.stage2 in speed:
            # Every record pays stage 1; the ones it does not answer pay stage 2 as well
            # (stage 2 alone never runs stage 1).
            per_text = (0 if name == "stage 2 alone" else 1 / speed[a.stage1]) + (
                1 - share
            ) / speed[a.stage2]
            figures["estimated_texts_per_s"] = round(1 / per_text, 1)
        results["variants"][name] = figures
        pooled, auto = figures["pooled"], figures["auto_at_0.95"]
        print(
            f"{name:<16} {share:>8.1%} {pooled['section']:>8.3f} {pooled['division']:>8.3f} "
            f"{pooled['exact']:>7.3f} {figures['mean_over_lists']['section']:>8.3f} "
            f"{auto['share']:>9.1%} {auto['precision']:>6.3f} "
            f"{figures.get('estimated_texts_per_s', float('nan')):>8.1f}"
        )
    if a.output:
        a.output.write_text(json.dumps(results, indent=1), "utf-8")


if __name__ == "__main__":
    main()

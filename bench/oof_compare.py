"""Two registered models' out-of-fold accuracy on the rows both were scored on (a script).

Entries built on different corpora (say, before and after new hand-written rows) cannot be
compared on their own reports: the held-out folds themselves changed. Each entry's
``out_of_fold.npz`` keys its rows by source and key, so this scores both on the rows they
share, per national list and per language of the hand-written folds:

    .venv/bin/python bench/oof_compare.py OLD NEW [--registry model_registry]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.cascade import load_stage  # noqa: E402


def accuracy(pred: np.ndarray, gold: np.ndarray) -> dict[str, float]:
    """Section, division and exact accuracy as the registry's reports count them."""
    from training.metrics import level_metrics

    return {k: v["accuracy"] for k, v in level_metrics(pred, gold).items()}


def _cell(acc: dict[str, float]) -> str:
    return " / ".join(f"{acc[k]:.3f}" for k in ("section", "division", "exact"))


def main() -> None:
    """Print one table: rows in common, old and new accuracy per national list and language."""
    from training.head import top_codes

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("old")
    ap.add_argument("new")
    ap.add_argument("--registry", type=Path, default=Path("model_registry"))
    args = ap.parse_args()
    old, new = load_stage(args.registry, args.old), load_stage(args.registry, args.new)
    # A key can repeat (a list's name variants of one code): keep rows whose key is unique.
    keys, counts = np.unique(np.concatenate([old["row_keys"], new["row_keys"]]), return_counts=True)
    unique = set(keys[counts == 2])
    where = {k: i for i, k in enumerate(new["row_keys"]) if k in unique}
    common = np.array([i for i, k in enumerate(old["row_keys"]) if k in where])
    rows_new = np.array([where[k] for k in old["row_keys"][common]])
    gold = old["labels"][common].astype(object)
    pred_old = top_codes(old["proba"][common], old["classes"].astype(object))
    pred_new = top_codes(new["proba"][rows_new], new["classes"].astype(object))
    national, groups = old["national"][common], old["groups"][common]
    cells = {
        "national lists, pooled": national,
        **{f"list {g}": national & (groups == g) for g in sorted(set(groups[national]))},
        **{
            f"hand-written {lang}": ~national & (old["languages"][common] == lang)
            for lang in sorted(set(old["languages"][common][~national]))
        },
    }
    print(f"{len(common)} rows in common ({len(old['row_keys'])} old, {len(new['row_keys'])} new)")
    print("| rows | n | old section / division / exact | new section / division / exact |")
    print("|---|---|---|---|")
    for name, mask in cells.items():
        a, b = accuracy(pred_old[mask], gold[mask]), accuracy(pred_new[mask], gold[mask])
        print(f"| {name} | {int(mask.sum())} | {_cell(a)} | {_cell(b)} |")


if __name__ == "__main__":
    main()

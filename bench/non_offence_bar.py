"""What the "not an offence" bar does to accuracy, on one entry's out-of-fold rows (a script).

For each bar, rows whose non-offence probability reaches it count as rejected, the rest take
their top offence code (as :func:`training.head.top_codes` does at 0.5). Per language of the
hand-written rows and for the national lists pooled: section accuracy, non-offences caught
of all, and offences lost (read as non-offences):

    .venv/bin/python bench/non_offence_bar.py VERSION [--registry model_registry] \\
        [--bar 0.2 --bar 0.5 ...]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.cascade import load_stage  # noqa: E402


def main() -> None:
    """Print one table: a row per bar, a cell per language."""
    from service.labels import NOT_AN_OFFENCE
    from service.models.policy import ClassColumns
    from training.head import NA
    from training.metrics import level_metrics

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("version")
    ap.add_argument("--registry", type=Path, default=Path("model_registry"))
    ap.add_argument("--bar", type=float, action="append", default=None)
    args = ap.parse_args()
    entry = load_stage(args.registry, args.version)
    columns = ClassColumns(entry["classes"].astype(object))
    gold = entry["labels"].astype(object)
    national, languages = entry["national"], entry["languages"]
    non_offence = columns.non_offence_probability(entry["proba"])
    top = np.array([columns.classes[i] for i in columns.top_offence(entry["proba"])], dtype=object)
    truly = gold == NOT_AN_OFFENCE
    cells = {"national lists": national}
    for lang in sorted(set(languages[~national])):
        cells[lang] = ~national & (languages == lang)
    print("| bar | " + " | ".join(cells) + " |")
    print("|---|" + "---|" * len(cells))
    for bar in args.bar or [0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8]:
        pred = top.copy()
        pred[non_offence >= bar] = NA
        row = []
        for mask in cells.values():
            section = level_metrics(pred[mask], gold[mask])["section"]["accuracy"]
            caught = int(np.sum(truly[mask] & (pred[mask] == NA)))
            lost = int(np.sum(~truly[mask] & (pred[mask] == NA)))
            row.append(f"{section:.3f}; {caught}/{int(truly[mask].sum())}, {lost} lost")
        print(f"| {bar:g} | " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()

"""How far reviewers' decisions can take a national list (a script, not a test).

For one registry entry: each national list scored out of fold (as ``iccs evaluate
--simulate-review`` scores it), then for each extra weight on decided entries'
similarity (``ScoreParts.decided_weight``; 0 is the service's scorer):
- the ceiling (``table_ceiling``): the most of each list the scorer could code in a table
  right at 0.97 with the best threshold in hindsight, with every other entry decided;
- the simulation under the table target: decisions per queue order, the finished table's
  precision, and how many entries decisions coded (learnt) and how right they were.

    ICCS_REGISTRY_DIR=REGISTRY .venv/bin/python bench/review_ceiling.py --model VERSION \
        --decided-weight 0,5,10,20 [--output result.json]

About 8 minutes to score the lists on 2 cores, then about 30 s per weight.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    from service.config import get_settings
    from training.evaluate import held_out_predictions
    from training.review_sim import ORDERS, simulate_held_out_lists

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None, help="registry version (default: the default)")
    ap.add_argument("--decided-weight", default="0", help="comma-separated weights")
    ap.add_argument("--target", type=float, default=0.97)
    ap.add_argument("--output", type=Path, default=None)
    args = ap.parse_args()

    h = held_out_predictions(get_settings(), args.model, national_only=True)
    proba, idx = h.national()
    parts = h.national_parts()
    results: dict[str, Any] = {"model_version": h.version, "target": args.target, "weights": {}}
    for weight in (float(w) for w in args.decided_weight.split(",")):
        r = simulate_held_out_lists(
            proba,
            h.classes,
            h.labels[idx],
            h.folds[idx],
            h.emb[idx],
            args.target,
            replace(parts, decided_weight=weight),
            policy="table",
        )
        pooled = r["pooled"]
        row = {
            "ceiling": r["ceiling"],
            "ceiling_per_list": {n: s["ceiling"] for n, s in r["per_source"].items()},
            "decisions": {o: pooled[o]["decision_share_weighted"] for o in ORDERS},
            "decisions_mean_over_lists": {
                o: pooled[o]["decision_share_mean_over_lists"] for o in ORDERS
            },
            "table_precision": {o: pooled[o]["precision"] for o in ORDERS},
            "learnt_share_value": pooled["value"]["learnt_share"],
            "learnt_precision_value": pooled["value"]["learnt_precision"],
        }
        results["weights"][str(weight)] = row
        print(f"decided weight {weight}: {json.dumps(row)}", flush=True)
    if args.output:
        args.output.write_text(json.dumps(results, indent=2), "utf-8")


if __name__ == "__main__":
    main()

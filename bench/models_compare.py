"""Two or more registered models on the same machine in one run (a script, not a test).

For each model: bulk throughput on distinct texts (the engine, every text new to it) and
single-record latency of ``Coder.code`` (the API's path without HTTP) at concurrency 1, in
interleaved rounds so a busy neighbour slows every model alike. Texts are the project's own
hand-written records (every language), shuffled with a fixed seed.

    .venv/bin/python bench/models_compare.py --model OLD --model NEW [--texts 3000] [--int8]
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

ROOT = Path(__file__).resolve().parents[1]


def texts(n: int, seed: int = 11) -> list[str]:
    """Distinct hand-written texts, all languages, shuffled."""
    seen: dict[str, None] = {}
    for path in sorted((ROOT / "labelled_data" / "handwritten").glob("*.csv")):
        with path.open(encoding="utf-8", newline="") as f:
            for row in csv.DictReader(f):
                seen.setdefault(row["text"], None)
    out = list(seen)
    random.Random(seed).shuffle(out)
    return out[:n]


def main() -> None:
    """Load each model, measure, print a table and JSON."""
    from service.bulk.engine import BulkOptions, classify_file
    from service.coding import Coder
    from service.config import Settings
    from service.models.predictor import load_predictor

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", action="append", required=True)
    ap.add_argument("--texts", type=int, default=3000)
    ap.add_argument("--single", type=int, default=300, help="single-record calls per round")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--int8", action="store_true", help="Serve each entry's int8 encoder.")
    a = ap.parse_args()
    settings = Settings()
    pool = texts(a.texts + a.single * a.rounds * len(a.model) + 64)
    bulk_texts, rest = pool[: a.texts], pool[a.texts :]
    coders = {}
    for version in a.model:
        started = time.perf_counter()
        predictor = load_predictor(settings.registry_dir, version, threads=1, int8=a.int8)
        coders[version] = Coder(predictor)
        coders[version].code(rest[:64])  # warm
        print(f"{version}: loaded in {time.perf_counter() - started:.2f} s", flush=True)
    rest = rest[64:]
    latency: dict[str, list[float]] = {v: [] for v in a.model}
    bulk: dict[str, list[float]] = {v: [] for v in a.model}
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "distinct.csv"
        with src.open("w", encoding="utf-8", newline="") as f:
            w = csv.writer(f, lineterminator="\n")
            w.writerow(["description"])
            w.writerows([t] for t in bulk_texts)
        for r in range(a.rounds):
            for version in a.model:
                coder = coders[version]
                for text in rest[: a.single]:
                    t0 = time.perf_counter()
                    coder.code([text], queue_review=False)
                    latency[version].append((time.perf_counter() - t0) * 1000)
                rest = rest[a.single :]
                out = Path(tmp) / f"{version}-{r}.csv"
                t0 = time.perf_counter()
                classify_file(src, out, BulkOptions(text_column="description"), coder)
                bulk[version].append(len(bulk_texts) / (time.perf_counter() - t0))
    result = {
        v: {
            "single_p50_ms": round(statistics.median(latency[v]), 2),
            "single_p95_ms": round(statistics.quantiles(latency[v], n=20)[18], 2),
            "bulk_distinct_texts_per_s": round(max(bulk[v]), 1),
        }
        for v in a.model
    }
    print("| model | single p50 ms | single p95 ms | bulk distinct texts/s |")
    print("|---|---|---|---|")
    for v, m in result.items():
        print(
            f"| {v} | {m['single_p50_ms']} | {m['single_p95_ms']} | "
            f"{m['bulk_distinct_texts_per_s']} |"
        )
    print(json.dumps(result))


if __name__ == "__main__":
    main()

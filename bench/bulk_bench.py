"""Bulk reclassification benchmark (a script, not a test).

1. A synthetic legacy file of 1,000,000 rows drawn from 5,000 distinct descriptions goes
   through ``iccs classify-file`` in a fresh process: end-to-end time (model load included)
   and peak memory (target <= 60 s and <= 1 GB on 2 cores).
2. 50,000 distinct descriptions, no repetition: unique texts per second through the engine,
   against the bare ONNX encoder on the same (normalised) texts in the same process
   (target >= 80 % of the encoder's throughput).
3. The 1,000,000-row file through ``--engine spark`` in local mode: time and overhead
   against the single-process run.

The descriptions come from this script's own templates (no reference data).

    .venv/bin/python bench/bulk_bench.py                      # promoted model, everything
    .venv/bin/python bench/bulk_bench.py --rows 200000 --no-spark --registry model_registry
"""

from __future__ import annotations

import argparse
import csv
import itertools
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

OFFENCES = [
    "theft of",
    "attempted theft of",
    "burglary with theft of",
    "robbery of",
    "handling stolen",
    "criminal damage to",
    "arson of",
    "fraudulent use of",
    "unlawful taking of",
    "receiving stolen",
    "shoplifting of",
    "snatch theft of",
    "possession of stolen",
    "vandalism of",
    "forgery of",
    "smuggling of",
    "illegal import of",
    "trafficking in",
    "possession with intent to supply",
    "ASSLT W/DW with",
    "B&E RES NIGHT taking",
    "criminal breach of trust involving",
    "embezzlement of",
    "extortion involving",
    "aggravated theft of",
]
OBJECTS = [
    "a motor vehicle",
    "a bicycle",
    "livestock",
    "cattle",
    "mobile phone",
    "cash",
    "jewellery",
    "copper cable",
    "fuel",
    "firearms",
    "ammunition",
    "cannabis",
    "heroin",
    "cocaine",
    "tobacco products",
    "alcohol",
    "timber",
    "fish",
    "a handbag",
    "credit cards",
    "a laptop",
    "tools",
    "building materials",
    "sheep",
    "goods from a shop",
]
CIRCUMSTANCES = [
    "",
    "at night",
    "from a dwelling",
    "from a vehicle",
    "from a person",
    "by an employee",
    "with violence",
    "using a weapon",
    "from a warehouse",
    "by two or more persons",
    "from a school",
    "from a church",
    "in a public place",
    "from a farm",
    "from a construction site",
    "on a train",
    "at a market",
    "from a hospital",
    "by a juvenile",
    "value over 1000",
]
PLACES = [
    "",
    "in district A",
    "in district B",
    "in the capital",
    "on the highway",
    "near the border",
    "in a rural area",
    "at the port",
    "at the airport",
    "in the city centre",
]


def descriptions(n: int, seed: int = 7) -> list[str]:
    """``n`` distinct legacy-style descriptions from the templates (deterministic)."""
    combos = itertools.product(OFFENCES, OBJECTS, CIRCUMSTANCES, PLACES)
    texts = [" ".join(p for p in parts if p) for parts in combos]
    if n > len(texts):
        raise SystemExit(f"the templates give {len(texts)} descriptions; asked for {n}")
    rng = random.Random(seed)
    rng.shuffle(texts)
    return texts[:n]


def write_legacy_file(path: Path, rows: int, texts: list[str], seed: int = 11) -> None:
    """A CSV of ``rows`` records; descriptions repeat with a skewed (Zipf-like) frequency."""
    rng = random.Random(seed)
    weights = [1.0 / (i + 1) ** 0.8 for i in range(len(texts))]
    picks = rng.choices(range(len(texts)), weights=weights, k=rows)
    with path.open("w", encoding="utf-8", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["record_id", "agency_code", "year", "description"])
        for i, t in enumerate(picks):
            # Every text occurs at least once; the rest follow the skewed draw.
            t = i if i < len(texts) else t
            w.writerow([f"R{i:07d}", f"N{t % 400:03d}", 2000 + i % 20, texts[t]])


def run_cli(args: list[str], env: dict[str, str]) -> tuple[float, float, str]:
    """Run ``iccs classify-file`` in a fresh process: seconds, peak RSS (MiB), stderr."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "service.bulk.commands", "classify-file", *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    seconds = time.monotonic() - started
    if proc.returncode != 0:
        raise SystemExit(proc.stderr[-4000:])
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    # ru_maxrss of children is the largest of them; a fresh bench process has run none before.
    return seconds, max(peak, before) / 1024, proc.stderr


def agreement(a: Path, b: Path) -> float:
    """Share of rows whose iccs_code and status are equal in two coded files.

    Not 100 %: the int8 encoder quantises activations per batch, so a text's scores move a
    little with the texts it is batched with, and near-ties can flip.
    """
    same = total = 0
    with a.open(encoding="utf-8", newline="") as fa, b.open(encoding="utf-8", newline="") as fb:
        for ra, rb in zip(csv.DictReader(fa), csv.DictReader(fb), strict=True):
            total += 1
            same += (ra["iccs_code"], ra["status"]) == (rb["iccs_code"], rb["status"])
    return round(same / total, 4) if total else 1.0


def unique_throughput(registry: Path, texts: list[str], work: Path) -> dict[str, float]:
    """Engine vs bare encoder on the same distinct texts, same process, same model."""
    from service.bulk.engine import BulkOptions, classify_file
    from service.coding import Coder
    from service.models.predictor import load_predictor

    predictor = load_predictor(registry)
    warm = texts[:64]
    predictor.encoder.encode([predictor.normalizer(t) for t in warm])
    predictor.classify(warm)

    normalised = [predictor.normalizer(t) for t in texts]
    started = time.monotonic()
    predictor.encoder.encode(normalised)
    encoder_s = time.monotonic() - started

    src = work / "distinct.csv"
    with src.open("w", encoding="utf-8", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["id", "description"])
        w.writerows([i, t] for i, t in enumerate(texts))
    started = time.monotonic()
    summary = classify_file(
        src, work / "distinct.coded.csv", BulkOptions(text_column="description"), Coder(predictor)
    )
    engine_s = time.monotonic() - started
    assert summary.distinct_texts == len(texts)
    return {
        "texts": len(texts),
        "encoder_texts_per_s": round(len(texts) / encoder_s, 1),
        "engine_texts_per_s": round(len(texts) / engine_s, 1),
        "engine_share_of_encoder": round(encoder_s / engine_s, 3),
        "encoder_s": round(encoder_s, 2),
        "engine_s": round(engine_s, 2),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument(
        "--registry",
        type=Path,
        default=None,
        help="registry folder (default: the ICCS_REGISTRY_DIR setting)",
    )
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--distinct", type=int, default=5_000)
    ap.add_argument(
        "--unique",
        type=int,
        default=50_000,
        help="distinct texts of the throughput run (0 skips it)",
    )
    ap.add_argument("--no-spark", action="store_true")
    ap.add_argument("--workdir", type=Path, default=None)
    ap.add_argument("--json", type=Path, default=None, help="also write the figures here")
    a = ap.parse_args()

    from service.config import Settings
    from service.models.registry import Registry

    registry = (a.registry or Settings().registry_dir).resolve()
    version = Registry(registry).resolve()
    work = a.workdir or Path(tempfile.mkdtemp(prefix="iccs-bulk-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "ICCS_REGISTRY_DIR": str(registry),
        "ICCS_STATE_DIR": str(work / "state"),
        "ICCS_LOG_LEVEL": "WARNING",
    }
    figures: dict[str, object] = {"model_version": version, "cpus": os.cpu_count()}

    src = work / "legacy.csv"
    started = time.monotonic()
    write_legacy_file(src, a.rows, descriptions(a.distinct))
    print(
        f"wrote {a.rows:,} rows from {a.distinct:,} descriptions in "
        f"{time.monotonic() - started:.1f} s ({src.stat().st_size / 2**20:.0f} MiB)"
    )

    seconds, peak, log = run_cli(
        [str(src), "--text-column", "description", "--output", str(work / "legacy.coded.csv")], env
    )
    figures["file"] = {
        "rows": a.rows,
        "distinct": a.distinct,
        "seconds": round(seconds, 1),
        "peak_rss_mib": round(peak),
        "rows_per_s": round(a.rows / seconds),
    }
    print(f"1. local: {seconds:.1f} s end to end, peak RSS {peak:.0f} MiB (targets 60 s, 1024 MiB)")
    print("   " + "\n   ".join(log.strip().splitlines()))

    if a.unique:
        tp = unique_throughput(registry, descriptions(a.unique, seed=13), work)
        figures["unique"] = tp
        print(
            f"2. {tp['texts']:,} distinct texts: engine {tp['engine_texts_per_s']:,}/s, "
            f"bare encoder {tp['encoder_texts_per_s']:,}/s "
            f"= {tp['engine_share_of_encoder']:.0%} of the encoder (target 80 %)"
        )

    if not a.no_spark:
        spark_s, _, spark_log = run_cli(
            [
                str(src),
                "--text-column",
                "description",
                "--output",
                str(work / "legacy.spark.csv"),
                "--engine",
                "spark",
            ],
            env,
        )
        agree = agreement(work / "legacy.coded.csv", work / "legacy.spark.csv")
        figures["spark"] = {
            "seconds": round(spark_s, 1),
            "overhead_vs_local": round(spark_s / seconds, 2),
            "rows_agreeing_with_local": agree,
        }
        print(
            f"3. spark local mode: {spark_s:.1f} s ({spark_s / seconds:.1f}x the local run); "
            f"iccs_code and status agree with the local run on {agree:.2%} of rows"
        )
        print("   " + "\n   ".join(spark_log.strip().splitlines()[-9:]))

    print(json.dumps(figures, indent=2))
    if a.json:
        a.json.write_text(json.dumps(figures, indent=2), "utf-8")


if __name__ == "__main__":
    main()

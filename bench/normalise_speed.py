"""Time the normaliser a registry entry serves with (a script, not a test).

Every national-list text (read from the data directory) and every hand-written row, each
normalised by ``entry_normalizer`` (abbreviation table, glossary, shorthand vocabulary), in
rounds; prints milliseconds a text per round. To compare code on one entry, copy the script
into the other checkout's ``bench/`` and run each copy from its own checkout (it imports the
checkout it sits in), on idle cores.

    ICCS_REGISTRY_DIR=REGISTRY .venv/bin/python bench/normalise_speed.py --model VERSION
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

ROOT = Path(__file__).resolve().parents[1]


def corpus_texts(data_dir: Path) -> list[str]:
    """National-list texts, then the hand-written rows' texts."""
    from training.corpus.sources import SOURCES, read_source

    texts = [rec.text for name in SOURCES for rec in read_source(name, data_dir)]
    for path in sorted((ROOT / "labelled_data" / "handwritten").glob("*.csv")):
        with path.open(encoding="utf-8", newline="") as f:
            texts += [row["text"] for row in csv.DictReader(f)]
    return texts


def main() -> None:
    from service.config import get_settings
    from service.models.predictor import entry_normalizer
    from service.models.registry import Registry

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="registry version")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    settings = get_settings()
    folder = Registry(settings.registry_dir).path(args.model)
    texts = corpus_texts(settings.data_dir)
    per_text = []
    for _ in range(args.rounds):
        # A fresh normaliser each round: its shorthand cache starts empty, as after a restart.
        normalise = entry_normalizer(folder)
        started = time.perf_counter()
        for text in texts:
            normalise(text)
        per_text.append((time.perf_counter() - started) / len(texts) * 1000)
    print(f"{len(texts)} texts, ms a text per round: {', '.join(f'{t:.4f}' for t in per_text)}")


if __name__ == "__main__":
    main()
